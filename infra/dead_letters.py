"""The dead-letter queue, in the database: what could not take effect, and why.

Nothing here expires. A letter is `dead` until an operator replays it (`replayed`, and `dead`
again should the replay fail too), archives it (`archived`, kept) or purges it. Letters with
the same cause share a fingerprint: the exception type and the function that raised it, never
the message text (which carries ids and would split a group per event).
"""

from __future__ import annotations

import base64
import hashlib
import traceback as tb
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Row, delete, func, select, update

from infra.db import insert_for
from infra.schema import dead_letters as table


@dataclass(frozen=True, slots=True)
class DeadLetter:
    handler: str
    event_type: str
    source: str
    event_id: str
    queue: str
    envelope: str
    attempts: int
    error_type: str
    error_message: str
    traceback: str
    fingerprint: str


def fingerprint(error_type: str, exc: BaseException | None) -> str:
    """Group key of a failure: exception type plus the innermost frame's file and function."""
    where = ""
    if exc is not None and exc.__traceback__ is not None:
        frame = tb.extract_tb(exc.__traceback__)[-1]
        where = f"{frame.filename.rsplit('/', 1)[-1]}:{frame.name}"
    return hashlib.blake2b(f"{error_type}@{where}".encode(), digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class Filter:
    """Which letters an operator means; every field narrows the selection."""

    ids: Sequence[int] = ()
    event_type: str | None = None
    handler: str | None = None
    fingerprint: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = "dead"

    @property
    def narrows(self) -> bool:
        """Whether it names letters or a kind of letter (the status alone selects nearly all)."""
        return any(value for name, value in asdict(self).items() if name != "status")

    def clauses(self) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if self.ids:
            clauses.append(table.c.id.in_(list(self.ids)))
        if self.event_type:
            clauses.append(table.c.event_type == self.event_type)
        if self.handler:
            clauses.append(table.c.handler == self.handler)
        if self.fingerprint:
            clauses.append(table.c.fingerprint == self.fingerprint)
        if self.since:
            clauses.append(table.c.last_failed_at >= self.since)
        if self.until:
            clauses.append(table.c.last_failed_at < self.until)
        if self.status:
            clauses.append(table.c.status == self.status)
        return clauses


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
        query = select(table).where(*where.clauses()).order_by(table.c.last_failed_at.desc()).limit(limit)
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
            .where(*where.clauses())
            .group_by(table.c.fingerprint, table.c.error_type)
            .order_by(func.count().desc())
        )
        with self._engine.connect() as connection:
            return list(connection.execute(query))

    def count(self, where: Filter) -> int:
        with self._engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).select_from(table).where(*where.clauses())
                ).scalar_one()
            )

    def counts_by_status(self) -> dict[str, int]:
        """Letters per status (`dead`, `replayed`, `archived`), in one query."""
        query = select(table.c.status, func.count()).group_by(table.c.status)
        with self._engine.connect() as connection:
            return {status: int(count) for status, count in connection.execute(query)}

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
            return connection.execute(
                update(table).where(*where.clauses()).values(status="archived")
            ).rowcount

    def purge(self, where: Filter) -> int:
        with self._engine.begin() as connection:
            return connection.execute(delete(table).where(*where.clauses())).rowcount


def readable_body(body: bytes) -> str:
    """The body as text; bytes that are not clean UTF-8 are kept whole as `base64:<data>`."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text or text.startswith("base64:"):
        return "base64:" + base64.b64encode(body).decode()
    return text
