"""The fleet's test twin, for unit tests of a domain: its events run through the real engine
(engine/dispatch.py: attempts, retries, the ledger, the outbox, follow-ups, dead letters) on
in-memory stores, with a virtual clock; no Redis, no database, no Celery worker.

    from fleet.testing import FleetTwin
    twin = FleetTwin(domains=[DOMAIN], services={...}, insert_ports={...}, transaction_ports={...})
    twin.publish(event, event)          # delivered twice
    outcome = twin.run_until_idle()     # follow-ups and retries included, on a virtual clock
    assert outcome.handled == 1 and outcome.duplicates == 1 and twin.dead_letters() == []
    assert twin.is_done("tickets.open", event) and twin.rows("tickets")[0]["id"] == event.id

Routes whose ports only buffer rows are taken by one guarded SQL statement on PostgreSQL; the
twin runs them in its transaction, which keeps the same promise (the ledger row, the rows and
the follow-ups together, or none of them).
"""

from __future__ import annotations

from fleet.testing.twin import FleetTwin, TwinOutcome, VirtualClock

__all__ = ["FleetTwin", "TwinOutcome", "VirtualClock"]
