"""The fleet's test twin, for unit tests of a domain: its events run through the real engine
(engine/dispatch.py: attempts, retries, the ledger, the outbox, follow-ups, dead letters) on
in-memory stores, with a virtual clock; no Redis, no database, no Celery worker.

    from fleet.testing import FleetTwin
    twin = FleetTwin(domains=[DOMAIN], services={"clock": ...}, transaction_ports={...})
    twin.publish(event)
    twin.run_until_idle()
    assert twin.dead_letters() == [] and twin.handled("fleet.tickets.open") == 1
"""

from __future__ import annotations

from fleet.testing.twin import FleetTwin, TwinOutcome, VirtualClock

__all__ = ["FleetTwin", "TwinOutcome", "VirtualClock"]
