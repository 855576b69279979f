"""The exactly-once engine: runs a message's events through their handlers (dispatch), takes
their effects by each route's idempotency mode (effects), retries or dead-letters what fails,
and replays dead letters. It depends on the Protocols in `engine.ports` only; the adapters that
implement them live in `infra/`, and `workers/bootstrap.py` wires them."""
