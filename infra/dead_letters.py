"""The dead-letter queue, in the database: what could not take effect, and why.

Nothing here expires. A letter is `dead` until an operator replays it (`replayed`, and `dead`
again should the replay fail too), archives it (`archived`, kept) or purges it. Letters with
the same cause share a fingerprint: the exception type and the function that raised it, never
the message text (which carries ids and would split a group per event).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Row, delete, func, select, update

from engine.records import DeadLetter, Filter
from infra.db import insert_for
from infra.schema import dead_letters as table


def clauses(where: Filter) -> list[ColumnElement[bool]]:
    """The WHERE clauses that select what `where` means."""
    found: list[ColumnElement[bool]] = []
    if where.ids:
        found.append(table.c.id.in_(list(where.ids)))
    if where.event_type:
        found.append(table.c.event_type == where.event_type)
    if where.handler:
        found.append(table.c.handler == where.handler)
    if where.fingerprint:
        found.append(table.c.fingerprint == where.fingerprint)
    if where.since:
        found.append(table.c.last_failed_at >= where.since)
    if where.until:
        found.append(table.c.last_failed_at < where.until)
    if where.status:
        found.append(table.c.status == where.status)
    return found


class SqlDeadLetters:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert = insert_for(engine, table)

    def add(self, letter: DeadLetter) -> None:
        """Store a letter; the same event failing again updates its row (attempts, error, last time)."""
        now = datetime.now(UTC)
        fields = {  # PostgreSQL text cannot hold NUL; keep it visible as an escape
            name: value.replace("\x00", "\\u0000") if isinstance(value, str) else value
            for name, value in asdict(letter).items()
        }
        values: dict[str, Any] = fields | {
            "first_failed_at": now,
            "last_failed_at": now,
            "status": "dead",
        }
        statement = self._insert.values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["handler", "source", "event_id"],
            set_={
                name: statement.excluded[name]
                for name in (
                    "envelope",
                    "attempts",
                    "error_type",
                    "error_message",
                    "traceback",
                    "fingerprint",
                    "last_failed_at",
                    "status",
                    "queue",
                )
            },
        )
        with self._engine.begin() as connection:
            connection.execute(statement)

    def find(self, where: Filter, limit: int = 100) -> list[Row[Any]]:
        query = select(table).where(*clauses(where)).order_by(table.c.last_failed_at.desc()).limit(limit)
        with self._engine.connect() as connection:
            return list(connection.execute(query))

    def get(self, letter_id: int) -> Row[Any] | None:
        with self._engine.connect() as connection:
            return connection.execute(select(table).where(table.c.id == letter_id)).first()

    def groups(self, where: Filter) -> list[Row[Any]]:
        """Letters grouped by fingerprint: count, type, first and last seen."""
        query = (
            select(
                table.c.fingerprint,
                table.c.error_type,
                func.min(table.c.handler).label("handler"),
                func.count().label("count"),
                func.min(table.c.first_failed_at).label("first_seen"),
                func.max(table.c.last_failed_at).label("last_seen"),
                func.min(table.c.error_message).label("example"),
            )
            .where(*clauses(where))
            .group_by(table.c.fingerprint, table.c.error_type)
            .order_by(func.count().desc())
        )
        with self._engine.connect() as connection:
            return list(connection.execute(query))

    def count(self, where: Filter) -> int:
        with self._engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).select_from(table).where(*clauses(where))
                ).scalar_one()
            )

    def counts_by_status(self) -> dict[str, int]:
        """Letters per status (`dead`, `replayed`, `archived`), in one query."""
        query = select(table.c.status, func.count()).group_by(table.c.status)
        with self._engine.connect() as connection:
            return {status: int(count) for status, count in connection.execute(query)}

    def oldest_dead_by_queue(self) -> dict[str, datetime]:
        """When the oldest letter still `dead` (waiting for an operator) failed for good, per queue."""
        query = (
            select(table.c.queue, func.min(table.c.last_failed_at))
            .where(table.c.status == "dead")
            .group_by(table.c.queue)
        )
        with self._engine.connect() as connection:
            return {queue: oldest for queue, oldest in connection.execute(query)}

    def mark_replayed(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        with self._engine.begin() as connection:
            connection.execute(
                update(table)
                .where(table.c.id.in_(list(ids)))
                .values(
                    status="replayed", replayed_at=datetime.now(UTC), replay_count=table.c.replay_count + 1
                )
            )

    def archive(self, where: Filter) -> int:
        """Set letters aside (`archived`): out of the dead list, never deleted, still searchable."""
        with self._engine.begin() as connection:
            return connection.execute(update(table).where(*clauses(where)).values(status="archived")).rowcount

    def purge(self, where: Filter) -> int:
        with self._engine.begin() as connection:
            return connection.execute(delete(table).where(*clauses(where))).rowcount


def readable_body(body: bytes) -> str:
    """The body as text; bytes that are not clean UTF-8 are kept whole as `base64:<data>`."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text or text.startswith("base64:"):
        return "base64:" + base64.b64encode(body).decode()
    return text
