"""The transactional outbox: follow-up events committed with the effects that caused them.

The worker writes them in the handler's transaction, publishes them right after commit and
deletes the rows; the relay (a beat task) publishes rows a crash left behind. Publication is
at least once; the ledger downstream makes it exactly-once in effect. The relay locks the rows it
takes (`FOR UPDATE SKIP LOCKED`) until they are published and deleted, so two relays never
publish one row; a row that can never be published (a body that no longer parses, a type no
longer routed) goes to the dead-letter queue with the reason, and the relay goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, func, insert, select

from engine.records import DeadLetter, fingerprint
from handlers.envelope import Event, parse_event
from handlers.errors import PermanentError
from infra.dead_letters import SqlDeadLetters
from infra.schema import outbox as table

log = logging.getLogger("fleet.outbox")
RELAY_HANDLER = "fleet.outbox.relay"
"""The handler named on a quarantined row's dead letter."""


@dataclass(frozen=True, slots=True)
class Relayed:
    published: int
    quarantined: int


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

    def relay(
        self,
        older_than: float,
        check: Callable[[Event], object],
        publish: Callable[[Sequence[Event]], object],
        dead_letters: SqlDeadLetters,
        limit: int = 500,
    ) -> Relayed:
        """Publish the oldest rows written before `older_than`, then delete them, holding their
        row locks meanwhile; `check` raises a `PermanentError` for an event that cannot be sent,
        whose row is dead-lettered and deleted instead. A failed publish keeps every row."""
        query = (
            select(table.c.id, table.c.event)
            .where(table.c.created_at < older_than)
            .order_by(table.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self._engine.begin() as connection:
            rows = [(row.id, row.event) for row in connection.execute(query)]
            good, letters = sendable(rows, check)
            done = [row_id for row_id, _ in rows]
            if good:
                publish(good)
            for letter in letters:
                dead_letters.add(letter)
                log.error("outbox row %s quarantined: %s", letter.event_id, letter.error_message)
            if done:
                connection.execute(delete(table).where(table.c.id.in_(done)))
        return Relayed(len(good), len(letters))

    def remove(self, ids: Sequence[int]) -> None:
        if ids:
            with self._engine.begin() as connection:
                connection.execute(delete(table).where(table.c.id.in_(list(ids))))

    def oldest_created_at(self) -> float | None:
        """When the oldest row still waiting to be published was committed (epoch seconds)."""
        with self._engine.connect() as connection:
            oldest = connection.execute(select(func.min(table.c.created_at))).scalar_one()
        return None if oldest is None else float(oldest)

    def backlog(self) -> int:
        with self._engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def sendable(
    rows: Iterable[tuple[int, str]], check: Callable[[Event], object]
) -> tuple[list[Event], list[DeadLetter]]:
    """Outbox rows (id, body) sorted for a relay: the events to publish, and a dead letter for
    each row that can never be sent (a body that no longer parses, or that `check` refuses with a
    `PermanentError`)."""
    good: list[Event] = []
    letters: list[DeadLetter] = []
    for row_id, body in rows:
        try:
            event = parse_event(body)
            check(event)
        except PermanentError as exc:
            letters.append(_quarantined(row_id, body, exc))
        else:
            good.append(event)
    return good, letters


def _quarantined(row_id: int, body: str, exc: PermanentError) -> DeadLetter:
    """A row's dead letter: its body as written, named by the event's id when it can be read."""
    try:
        event = parse_event(body)
        event_type, source, event_id = event.type, event.source, event.id
    except PermanentError:
        event_type, source, event_id = "?", "fleet:outbox", f"outbox-{row_id}"
    return DeadLetter(
        handler=RELAY_HANDLER,
        event_type=event_type[:256],
        source=source[:1024],
        event_id=event_id[:1024],
        queue="",
        envelope=body,
        attempts=1,
        error_type=type(exc).__name__,
        error_message=str(exc),
        traceback="",
        fingerprint=fingerprint(f"outbox:{type(exc).__name__}", None),
    )
