"""The values the engine and its stores exchange: ledger keys, claims, attempt starts, guarded
writes, dead letters and history entries. Plain data, no I/O; the stores in `infra/` read and
write them."""

from __future__ import annotations

import hashlib
import traceback as tb
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from handlers.envelope import Event
from handlers.trace_context import trace_id

Key = tuple[str, str]
"""An event's identity: (source, id)."""


def digest(key: Key) -> str:
    """The ledger key of an event: blake2b-128 of its source and id (fixed width, so the primary
    key stays small however long producers make their ids)."""
    source, event_id = key
    return hashlib.blake2b(f"{len(source)}:{source}{event_id}".encode(), digest_size=16).hexdigest()


@dataclass
class Claims:
    claimed: set[Key] = field(default_factory=set)
    done: set[Key] = field(default_factory=set)
    busy: dict[Key, float] = field(default_factory=dict)
    """Keys another live message holds, with seconds until their lease ends."""


@dataclass(frozen=True, slots=True)
class MessageStart:
    deliveries: int
    fell_back: bool
    """A first delivery that fell back to one event at a time, so its events' runs are counted."""


@dataclass
class EventWrites:
    """What one event's handler asked for: rows per table, and follow-up events (JSON text)."""

    key: str
    """The event's ledger key (`digest`)."""
    rows: list[tuple[Any, list[dict[str, Any]]]] = field(default_factory=list)
    """(table, rows) pairs; the table is the store's own handle (an `InsertPort.table`)."""
    follow_ups: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Applied:
    fresh: set[str]
    """Ledger keys inserted now: their events took effect."""
    outbox_ids: list[int]


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
    """Which dead letters an operator means; every field narrows the selection."""

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


class HistoryMode(StrEnum):
    """What workers write (`FLEET_HISTORY`): every outcome, only retries and dead letters, or nothing."""

    ALL = "all"
    FAILURES = "failures"
    OFF = "off"


class Outcome(StrEnum):
    """What became of an event, as the history records it."""

    PUBLISHED = "published"
    HANDLED = "handled"
    DUPLICATE = "duplicate"
    """Skipped: the ledger says the event already took effect."""
    RETRY_SCHEDULED = "retry_scheduled"
    DEAD_LETTERED = "dead_lettered"
    REPLAYED = "replayed"
    ARCHIVED = "archived"


def entry_row(
    event: Event, outcome: Outcome, *, handler: str, attempt: int, at: float, detail: str = ""
) -> dict[str, Any]:
    """One history row for `event`."""
    return {
        "at": at,
        "event_id": event.id,
        "source": event.source,
        "event_type": event.type,
        "handler": handler,
        "outcome": str(outcome),
        "attempt": attempt,
        "correlation_id": event.correlationid,
        "causation_id": event.causationid,
        "detail": detail[:2000],
        "trace_id": trace_id(event.traceparent),
    }
