"""The transactional outbox: follow-up events committed with the effects that caused them.

The worker writes them in the handler's transaction, publishes them right after commit and
deletes the rows; the relay (a beat task) publishes rows a crash left behind. Publication is
at least once; the ledger downstream makes it exactly-once in effect.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Engine, delete, insert, select

from handlers.envelope import Event, parse_event
from infra.schema import outbox as table


class SqlOutbox:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, connection: Connection, events: Sequence[Event], now: float) -> list[int]:
        if not events:
            return []
        rows = connection.execute(
            insert(table).returning(table.c.id),
            [{"created_at": now, "event": event.to_json().decode()} for event in events],
        )
        return [row[0] for row in rows]

    def pending(self, older_than: float, limit: int = 500) -> list[tuple[int, Event]]:
        query = select(table.c.id, table.c.event).where(table.c.created_at < older_than).order_by(table.c.id)
        with self._engine.connect() as connection:
            return [(row.id, parse_event(row.event)) for row in connection.execute(query.limit(limit))]

    def remove(self, ids: Sequence[int]) -> None:
        if ids:
            with self._engine.begin() as connection:
                connection.execute(delete(table).where(table.c.id.in_(list(ids))))

    def backlog(self) -> int:
        from sqlalchemy import func

        with self._engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(table)).scalar_one())
