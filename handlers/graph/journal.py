"""The change journal: every Graph follow-up event recorded once, for consumers to read."""

from __future__ import annotations

from handlers.envelope import Event
from handlers.graph.ports import ChangeJournal


def record_change(event: Event, *, journal: ChangeJournal) -> None:
    """Record a `graph.*` change (mail received, user updated or deleted ...).

    Transactional: the journal row commits with the ledger row, so the same change found by a
    notification and by a delta resync (same event id) is recorded once.
    """
    data = event.data if isinstance(event.data, dict) else {}
    journal.add(
        event_id=event.id,
        event_type=event.type,
        resource_id=str(event.subject or data.get("id", "")),
        data=data,
    )
