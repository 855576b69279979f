"""The ledger, outbox, dead letters, attempts and delayed retries in memory, with transactions
that keep nothing of a block that raised: the same promises as the SQL and Redis stores,
checked by the same contract tests (tests/contract/test_stores.py)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.ports import DeadLetterStore
from engine.records import Claims, DeadLetter, Filter, Key, MessageStart
from handlers.envelope import Event
from infra.outbox import Relayed, sendable


class MemoryTransaction:
    """Writes made in a transaction, applied together when it commits."""

    def __init__(self) -> None:
        self._writes: list[Callable[[], None]] = []
        self.ledger: dict[tuple[str, Key], dict[str, Any]] = {}
        """Ledger rows recorded in this transaction, by (handler, event key)."""

    def on_commit(self, write: Callable[[], None]) -> None:
        """Run `write` when the transaction commits; never if it rolls back."""
        self._writes.append(write)

    def commit(self) -> None:
        for write in self._writes:
            write()


class MemoryDatabase:
    """The tables of a twin: the ledger, the outbox, and the rows its insert ports wrote."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.ledger: dict[tuple[str, Key], dict[str, Any]] = {}
        self.outbox: dict[int, tuple[float, str]] = {}
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.ids = itertools.count(1)


class MemoryTransactions:
    def __init__(self, database: MemoryDatabase) -> None:
        self.database = database

    @contextmanager
    def begin(self) -> Iterator[MemoryTransaction]:
        transaction = MemoryTransaction()
        yield transaction
        with self.database.lock:
            transaction.commit()

    def insert(self, transaction: MemoryTransaction, table: Any, rows: Sequence[dict[str, Any]]) -> None:
        name = getattr(table, "name", table)  # a SQLAlchemy Table, or a plain name
        rows = [dict(row) for row in rows]
        transaction.on_commit(lambda: self.database.tables.setdefault(name, []).extend(rows))


class MemoryLedger:
    def __init__(self, database: MemoryDatabase) -> None:
        self.database = database

    def record(
        self, transaction: MemoryTransaction, handler: str, keys: Sequence[Key], now: float
    ) -> set[Key]:
        fresh: set[Key] = set()
        with self.database.lock:
            for key in keys:
                if (handler, key) in self.database.ledger or (handler, key) in transaction.ledger:
                    continue
                row = {"status": "done", "owner": None, "lease_until": None, "processed_at": now}
                transaction.ledger[(handler, key)] = row
                fresh.add(key)
        rows = {key: transaction.ledger[(handler, key)] for key in fresh}
        transaction.on_commit(lambda: self._keep(handler, rows))
        return fresh

    def _keep(self, handler: str, rows: dict[Key, dict[str, Any]]) -> None:
        for key, row in rows.items():
            self.database.ledger.setdefault((handler, key), row)

    def claim(self, handler: str, keys: Sequence[Key], owner: str, lease: float, now: float) -> Claims:
        claims = Claims()
        with self.database.lock:
            for key in dict.fromkeys(keys):
                row = self.database.ledger.get((handler, key))
                if row is None or (
                    row["status"] == "claimed" and (row["lease_until"] < now or row["owner"] == owner)
                ):
                    self.database.ledger[(handler, key)] = {
                        "status": "claimed", "owner": owner, "lease_until": now + lease, "processed_at": now,
                    }  # fmt: skip
                    claims.claimed.add(key)
                elif row["status"] == "done":
                    claims.done.add(key)
                else:
                    claims.busy[key] = max(0.0, row["lease_until"] - now)
        return claims

    def complete(
        self, transaction: MemoryTransaction, handler: str, keys: Sequence[Key], owner: str, now: float
    ) -> int:
        with self.database.lock:
            held = [
                key
                for key in keys
                if (row := self.database.ledger.get((handler, key))) is not None and row["owner"] == owner
            ]

        def turn_done() -> None:
            for key in held:
                self.database.ledger[(handler, key)] = {
                    "status": "done", "owner": None, "lease_until": None, "processed_at": now,
                }  # fmt: skip

        transaction.on_commit(turn_done)
        return len(held)

    def release(self, handler: str, key: Key, owner: str) -> None:
        with self.database.lock:
            row = self.database.ledger.get((handler, key))
            if row is not None and row["status"] == "claimed" and row["owner"] == owner:
                del self.database.ledger[(handler, key)]

    def is_done(self, handler: str, key: Key) -> bool:
        row = self.database.ledger.get((handler, key))
        return row is not None and row["status"] == "done"


class MemoryOutbox:
    def __init__(self, database: MemoryDatabase) -> None:
        self.database = database

    def add(self, transaction: MemoryTransaction, events: Sequence[Event], now: float) -> list[int]:
        rows = {next(self.database.ids): event.to_json().decode() for event in events}

        def keep() -> None:
            for row_id, body in rows.items():
                self.database.outbox[row_id] = (now, body)

        transaction.on_commit(keep)
        return list(rows)

    def remove(self, ids: Sequence[int]) -> None:
        with self.database.lock:
            for row_id in ids:
                self.database.outbox.pop(row_id, None)

    def relay(
        self,
        older_than: float,
        check: Callable[[Event], object],
        publish: Callable[[Sequence[Event]], object],
        dead_letters: DeadLetterStore,
        limit: int = 500,
    ) -> Relayed:
        """As `infra.outbox.SqlOutbox.relay`: the oldest rows published then deleted, a row that
        can never be sent dead-lettered; a failed publish keeps every row."""
        with self.database.lock:
            due = sorted((i, body) for i, (at, body) in self.database.outbox.items() if at < older_than)[
                :limit
            ]
            good, letters = sendable(due, check)
            if good:
                publish(good)
            for letter in letters:
                dead_letters.add(letter)
            self.remove([row_id for row_id, _ in due])
        return Relayed(len(good), len(letters))

    def backlog(self) -> int:
        return len(self.database.outbox)


@dataclass
class StoredLetter:
    """A dead letter as the store keeps it (the columns `SqlDeadLetters.find` returns)."""

    id: int
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
    first_failed_at: datetime
    last_failed_at: datetime
    status: str = "dead"
    replay_count: int = 0
    replayed_at: datetime | None = None


def _matches(letter: StoredLetter, where: Filter) -> bool:
    return (
        (not where.ids or letter.id in where.ids)
        and where.event_type in (None, letter.event_type)
        and where.handler in (None, letter.handler)
        and where.fingerprint in (None, letter.fingerprint)
        and (where.since is None or letter.last_failed_at >= where.since)
        and (where.until is None or letter.last_failed_at < where.until)
        and where.status in (None, letter.status)
    )


@dataclass
class MemoryDeadLetters:
    letters: dict[tuple[str, str, str], StoredLetter] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def add(self, letter: DeadLetter) -> None:
        """Keep a letter; the same event failing again updates its letter."""
        now = datetime.now(UTC)
        key = (letter.handler, letter.source, letter.event_id)
        old = self.letters.get(key)
        self.letters[key] = StoredLetter(
            id=old.id if old else next(self._ids),
            first_failed_at=old.first_failed_at if old else now,
            last_failed_at=now,
            replay_count=old.replay_count if old else 0,
            replayed_at=old.replayed_at if old else None,
            **asdict(letter),
        )

    def find(self, where: Filter, limit: int = 100) -> list[StoredLetter]:
        found = [letter for letter in self.letters.values() if _matches(letter, where)]
        return sorted(found, key=lambda letter: (letter.last_failed_at, letter.id), reverse=True)[:limit]

    def count(self, where: Filter) -> int:
        return len(self.find(where, limit=len(self.letters)))

    def mark_replayed(self, ids: Sequence[int]) -> None:
        for letter in self.letters.values():
            if letter.id in ids:
                letter.status, letter.replay_count = "replayed", letter.replay_count + 1
                letter.replayed_at = datetime.now(UTC)


class _Started:
    def __init__(self, start: MessageStart) -> None:
        self._start = start

    def result(self) -> MessageStart:
        return self._start

    def close(self) -> None:
        return None


@dataclass
class MemoryAttempts:
    """A message's starts and its events' runs (infra/attempts.py keeps them in Redis)."""

    records: dict[str, dict[str, int]] = field(default_factory=dict)

    def start(self, message_id: str) -> _Started:
        record = self.records.setdefault(message_id, {})
        record["_deliveries"] = record.get("_deliveries", 0) + 1
        return _Started(MessageStart(record["_deliveries"], bool(record.get("_fallback"))))

    def falling_back(self, message_id: str) -> None:
        self.records.setdefault(message_id, {})["_fallback"] = 1

    def run(self, message_id: str, event_digest: str) -> int:
        record = self.records.setdefault(message_id, {})
        record[event_digest] = record.get(event_digest, 0) + 1
        return record[event_digest]

    def finished(self, message_id: str) -> None:
        self.records.pop(message_id, None)

    def flush(self) -> None:
        return None


@dataclass
class MemoryDelayed:
    """Retries due later than the broker holds them: (due, message), taken when due."""

    waiting: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def add(self, message: dict[str, Any], due: float) -> None:
        self.waiting.append((due, message))

    def take_due(self, now: float) -> list[dict[str, Any]]:
        due = [message for at, message in self.waiting if at <= now]
        self.waiting = [(at, message) for at, message in self.waiting if at > now]
        return due
