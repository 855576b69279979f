"""A demo event's dead letter written straight to the store, for tests of what operators do with letters."""

from __future__ import annotations

from sqlalchemy import Engine

from engine.records import DeadLetter, Filter
from handlers.envelope import new_event
from infra.dead_letters import SqlDeadLetters


def bury_flaky_deposit(
    engine: Engine,
    event_id: str,
    *,
    data: dict[str, object] | None = None,
    error_message: str = "downstream unavailable",
    fingerprint: str = "f00dfeedf00dfeed",
) -> int:
    """Dead-letter a `demo.flaky_requested` event after 4 attempts; returns the letter's id."""
    payload = {"account": "a-1", "amount": 1, **(data or {})}
    event = new_event("demo.flaky_requested", payload, source="tests", id=event_id)
    store = SqlDeadLetters(engine)
    store.add(
        DeadLetter(
            handler="fleet.demo.record_flaky_deposit",
            event_type=event.type,
            source=event.source,
            event_id=event.id,
            queue="fleet.demo",
            envelope=event.to_json().decode(),
            attempts=4,
            error_type="RetryableError",
            error_message=error_message,
            traceback="Traceback ...",
            fingerprint=fingerprint,
        )
    )
    return int(store.find(Filter(), limit=1)[0].id)
