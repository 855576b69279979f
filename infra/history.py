"""Event history: what happened to each event, kept in the database for the console's timeline.

Workers append an entry per outcome (handled, duplicate, retry scheduled, dead-lettered, ...)
through `BufferedHistory`, which writes them in the background, many messages' entries to a
statement, so history costs a message nothing on its way. History is observability, not state:
a write the database cannot take now is tried again (up to `MAX_WAITING` entries); entries given
up on (refused, overflowing, unwritten at a pool process's exit) are counted in Redis
(`DroppedHistory`: `fleet_history_dropped_total`, the console's overview). So are those a process
killed outright (an OOM kill, a segfault) held: each process keeps its count of unwritten entries
where its siblings find it after its death (infra/pending_entries.py).
The console reads it by event id, type or correlation id. History is bounded by age: the
retention sweep (`SqlHistory.prune`) deletes entries older than the retention, and nothing
else is ever deleted, so the console needs no process memory to show the past.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import redis
from sqlalchemy import Connection, Engine, delete, func, or_, select

from infra import keys
from infra.db import insert_rows
from infra.failures import is_infrastructure_failure
from infra.pending_entries import PendingEntries, collect_dead
from infra.schema import event_history

log = logging.getLogger("fleet.history")
FLUSH_INTERVAL = 2.0
"""Seconds a history entry may wait in a worker before it is written."""
MAX_WAITING = 10_000
"""Entries a worker keeps through a database outage; older ones beyond it are dropped (counted)."""
COLLECT_INTERVAL = 10.0
"""Seconds between looks for the unwritten entries of dead processes."""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    id: int
    at: float
    event_id: str
    source: str
    event_type: str
    handler: str
    outcome: str
    attempt: int
    correlation_id: str | None
    causation_id: str | None
    detail: str
    trace_id: str | None = None


class SqlHistory:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def append(self, rows: Sequence[dict[str, Any]], connection: Connection | None = None) -> None:
        """Write rows in one statement: in `connection`'s transaction when given, else in a new one."""
        if not rows:
            return
        if connection is not None:
            insert_rows(connection, event_history, rows)
            return
        with self._engine.begin() as own:
            insert_rows(own, event_history, rows)

    def search(
        self,
        *,
        text: str | None = None,
        event_type: str | None = None,
        outcome: str | None = None,
        limit: int = 100,
    ) -> list[HistoryEntry]:
        """The newest entries; `text` matches an event id or a correlation id exactly."""
        query = select(event_history).order_by(event_history.c.id.desc()).limit(limit)
        if text:
            query = query.where(or_(event_history.c.event_id == text, event_history.c.correlation_id == text))
        if event_type:
            query = query.where(event_history.c.event_type == event_type)
        if outcome:
            query = query.where(event_history.c.outcome == outcome)
        return self._entries(query)

    def timeline(self, event_id: str) -> list[HistoryEntry]:
        """An event's entries and its follow-ups' (those caused by it), oldest first."""
        query = (
            select(event_history)
            .where(or_(event_history.c.event_id == event_id, event_history.c.causation_id == event_id))
            .order_by(event_history.c.at, event_history.c.id)
        )
        return self._entries(query)

    def counts_since(self, since: float) -> dict[str, int]:
        """Entries per outcome since `since` (epoch seconds), for the console's overview."""
        query = (
            select(event_history.c.outcome, func.count())
            .where(event_history.c.at >= since)
            .group_by(event_history.c.outcome)
        )
        with self._engine.connect() as connection:
            return {outcome: count for outcome, count in connection.execute(query)}

    def prune(self, older_than: float) -> int:
        with self._engine.begin() as connection:
            return connection.execute(delete(event_history).where(event_history.c.at < older_than)).rowcount

    def _entries(self, query: Any) -> list[HistoryEntry]:
        with self._engine.connect() as connection:
            return [HistoryEntry(**row._asdict()) for row in connection.execute(query)]


class HistoryWriter(Protocol):
    def append(self, rows: Sequence[dict[str, Any]]) -> None: ...


class DroppedHistory:
    """The count of history entries given up on, in Redis for every process and machine to read.
    A count Redis cannot take now is added to the next one."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._key = keys.history_dropped(prefix)
        self._uncounted = 0

    def add(self, count: int) -> None:
        self._uncounted += count
        try:
            self._redis.incrby(self._key, self._uncounted)
        except redis.RedisError as exc:
            log.warning("%d dropped history entries not counted yet: %s", self._uncounted, exc)
            return
        self._uncounted = 0

    def total(self) -> int:
        return int(self._redis.get(self._key) or 0)


class BufferedHistory:
    """Collects entries and writes them from a daemon thread every `interval` seconds (or as soon
    as `batch` wait). Started on first use, so each forked pool process runs its own thread.
    With `pending_dir`, the count of entries held unwritten is kept there for the siblings of a
    process killed outright to count as dropped."""

    def __init__(
        self,
        history: SqlHistory,
        *,
        interval: float = FLUSH_INTERVAL,
        batch: int = 1000,
        dropped: Callable[[int], None] = lambda count: None,
        pending_dir: Path | None = None,
    ) -> None:
        self._history = history
        self._interval = interval
        self._batch = batch
        self._dropped = dropped
        self._pending_dir = pending_dir
        self._pending: PendingEntries | None = None
        self._rows: list[dict[str, Any]] = []
        self._held = 0
        """Entries appended and neither written nor counted as dropped: `_rows` and a flush's."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._owner = os.getpid()

    def append(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        with self._lock:
            if self._owner != os.getpid():  # forked: the parent's rows, thread and file are not ours
                self._forked()
            self._rows.extend(rows)
            self._hold(len(rows))
            waiting = len(self._rows)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fleet-history", daemon=True)
                self._thread.start()
        if waiting >= self._batch:
            self._wake.set()

    def flush(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return
        try:
            self._history.append(rows)
        except Exception as exc:  # the effects stand; losing their history is not worth a redelivery
            if is_infrastructure_failure(exc):  # the database is away: keep them for the next flush
                with self._lock:
                    self._rows[:0] = rows
                    overflow = max(0, len(self._rows) - MAX_WAITING)
                    del self._rows[:overflow]
                log.warning("%d history entries wait for the database: %s", len(rows), exc)
                self._drop(overflow)
            else:
                log.warning("%d history entries refused by the database", len(rows), exc_info=True)
                self._drop(len(rows))
        else:
            with self._lock:
                self._hold(-len(rows))

    def close(self) -> None:
        """Write what waits; count what cannot be written (the process is leaving)."""
        self.flush()
        with self._lock:
            rows, self._rows = self._rows, []
        self._drop(len(rows))
        with self._lock:
            if self._pending is not None and self._held == 0:
                self._pending.close()
                self._pending = None

    def collect_dead(self) -> None:
        """Count as dropped the entries that processes killed outright held unwritten."""
        if self._pending_dir is None:
            return
        try:
            count = collect_dead(self._pending_dir)
        except OSError as exc:
            log.warning("could not look for dead processes' history entries: %s", exc)
            return
        if count:
            log.warning("%d history entries lost with a process that was killed", count)
            self._dropped(count)

    def _hold(self, change: int) -> None:
        """Called with the lock held."""
        self._held += change
        if self._pending_dir is None:
            return
        if self._pending is None:
            try:
                self._pending = PendingEntries(self._pending_dir)
            except OSError as exc:
                log.warning("history entries held here go uncounted if this process is killed: %s", exc)
                self._pending_dir = None
                return
        self._pending.set(self._held)

    def _forked(self) -> None:
        self._owner = os.getpid()
        self._rows, self._held, self._thread = [], 0, None
        if self._pending is not None:
            self._pending.forget()  # the parent's file stays the parent's
            self._pending = None

    def _drop(self, count: int) -> None:
        if count:
            log.warning("%d history entries dropped", count)
            self._dropped(count)
            with self._lock:
                self._hold(-count)

    def _run(self) -> None:
        collected = 0.0
        while True:
            if time.monotonic() - collected >= COLLECT_INTERVAL:
                self.collect_dead()
                collected = time.monotonic()
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush()
