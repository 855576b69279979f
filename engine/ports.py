"""What the engine is given, as Protocols: its stores (ledger, outbox, dead letters, attempts,
delayed retries, history), the publisher, transaction-bound ports, the rate-limit gate, the
recorder and the tracer. The adapters in `infra/` implement them; the composition root (workers/) wires them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

from engine.records import Applied, Claims, DeadLetter, EventWrites, Filter, Key, MessageStart
from handlers.envelope import Event
from handlers.ports import Publisher
from handlers.routing import Route

Transaction = Any
"""An open transaction of the fleet's database, handed through the engine untouched (a
SQLAlchemy `Connection` for the SQL stores): ledger rows, effects and outbox rows that share it
commit together."""

IsInfrastructureFailure = Callable[[BaseException], bool]
"""Whether an exception means the fleet's own database, Redis or broker failed, not the event
(infra/failures.py): such a failure spends no attempt and sends the message again later."""


class Transactions(Protocol):
    def begin(self) -> AbstractContextManager[Transaction]:
        """A transaction that commits when the block ends, or rolls back if it raised."""
        ...

    def insert(self, transaction: Transaction, table: Any, rows: Sequence[dict[str, Any]]) -> None:
        """Insert an `InsertPort`'s rows into its table, in `transaction`."""
        ...


class Ledger(Protocol):
    """Which handler has taken effect for which event (infra/ledger.py)."""

    def record(self, transaction: Transaction, handler: str, keys: Sequence[Key], now: float) -> set[Key]:
        """Transactional mode: the keys new to the ledger, recorded in `transaction`."""
        ...

    def claim(self, handler: str, keys: Sequence[Key], owner: str, lease: float, now: float) -> Claims: ...

    def complete(
        self, transaction: Transaction, handler: str, keys: Sequence[Key], owner: str, now: float
    ) -> int:
        """Turn `owner`'s claims done; the number turned (0: another message took them over)."""
        ...

    def release(self, handler: str, key: Key, owner: str) -> None: ...


class Outbox(Protocol):
    """Follow-up events written with their cause's effects, published after commit (infra/outbox.py)."""

    def add(self, transaction: Transaction, events: Sequence[Event], now: float) -> list[int]: ...

    def remove(self, ids: Sequence[int]) -> None: ...


class GuardedWrites(Protocol):
    """Ledger rows, inserts and outbox rows as one statement (infra/guarded_writes.py)."""

    @property
    def supported(self) -> bool: ...

    def apply(self, handler: str, writes: Sequence[EventWrites], now: float) -> Applied: ...


class DeadLetterStore(Protocol):
    """The dead-letter queue (infra/dead_letters.py)."""

    def add(self, letter: DeadLetter) -> None: ...

    def find(self, where: Filter, limit: int = 100) -> Sequence[Any]:
        """Letters with `id` and `envelope`, newest first."""
        ...

    def mark_replayed(self, ids: Sequence[int]) -> None: ...


class PendingStart(Protocol):
    def result(self) -> MessageStart: ...

    def close(self) -> None: ...


class Attempts(Protocol):
    """A message's starts and its events' runs, surviving worker deaths (infra/attempts.py)."""

    def start(self, message_id: str) -> PendingStart: ...

    def falling_back(self, message_id: str) -> None: ...

    def run(self, message_id: str, event_digest: str) -> int: ...

    def finished(self, message_id: str) -> None: ...

    def flush(self) -> None: ...


class Delayed(Protocol):
    """Retries due later than the broker should hold them (infra/delayed.py)."""

    def add(self, message: dict[str, Any], due: float) -> None: ...


class HistoryWriter(Protocol):
    """Takes history rows (`engine.records.entry_row`); writes them off the message's path."""

    def append(self, rows: Sequence[dict[str, Any]]) -> None: ...


class RoutePublisher(Publisher, Protocol):
    """The fleet's own queues: events by type, or already-validated bodies to one route."""

    def send(
        self,
        route: Route,
        events: Sequence[str | dict[str, Any]],
        *,
        attempt: int = 0,
        countdown: float | None = None,
        producer: Any = None,
    ) -> None: ...


class TransactionPort(Protocol):
    """A port bound to the handler's transaction; `flush()` writes what it buffered."""

    def flush(self) -> None: ...


class InsertPort(Protocol):
    """A port that only buffers rows to insert into one table. A handler whose ports are all of
    this kind runs before the database is touched, and its rows are inserted with its ledger row
    in one statement (infra/guarded_writes.py)."""

    table: Any
    """The store's handle of the table (a SQLAlchemy `Table`)."""

    def take(self) -> list[dict[str, Any]]:
        """The rows buffered since the last call, ready to insert."""
        ...


class Gate(Protocol):
    """Rate limits, circuit breakers and downstream slots (infra/throttle.py, infra/slots.py)."""

    def admit(self, route: Route, wanted: int) -> tuple[int, float]:
        """How many of `wanted` events may run now, and in how many seconds the rest may; admitting
        any may take one of this worker's slots of the route's downstream until `release`."""
        ...

    def release(self, route: Route) -> None:
        """Give back the downstream slot `admit` took for the message (if any)."""
        ...

    def record(self, route: Route, ok: int = 0, failed: int = 0) -> None:
        """Outcomes of runs, for the route's circuit breaker."""
        ...


class Recorder(Protocol):
    """Counts what the dispatcher does (infra/metrics/fleet.py PrometheusRecorder)."""

    def received(self, event_type: str, handler: str, queue: str, count: int) -> None: ...

    def waited(self, queue: str, seconds: float) -> None: ...

    def running(self, handler: str, count: int) -> None: ...

    def finished(
        self,
        event_type: str,
        handler: str,
        queue: str,
        *,
        counts: dict[str, int],
        seconds: float,
        running: int,
    ) -> None: ...

    def committed(self, handler: str, events: int) -> None:
        """One transaction (or guarded statement) took `events` events at once."""
        ...


class NoRecorder:
    def received(self, event_type: str, handler: str, queue: str, count: int) -> None:
        return None

    def waited(self, queue: str, seconds: float) -> None:
        return None

    def running(self, handler: str, count: int) -> None:
        return None

    def finished(
        self,
        event_type: str,
        handler: str,
        queue: str,
        *,
        counts: dict[str, int],
        seconds: float,
        running: int,
    ) -> None:
        return None

    def committed(self, handler: str, events: int) -> None:
        return None


class OpenGate:
    """No limits: every event runs now."""

    def admit(self, route: Route, wanted: int) -> tuple[int, float]:
        return wanted, 0.0

    def release(self, route: Route) -> None:
        return None

    def record(self, route: Route, ok: int = 0, failed: int = 0) -> None:
        return None


class Tracer(Protocol):
    """Spans of the events' processing (infra/tracing/): the messaging conventions of
    OpenTelemetry. Every call is cheap when nothing is exported (`NoTracer`)."""

    def processing(
        self, route: Route, events: Sequence[Event], attempt: int, message_id: str
    ) -> AbstractContextManager[None]:
        """Around a run of `events`: one event's `process` span (its parent and link the event's
        creation context), or many events' span linking each one's."""
        ...

    def handling(self, route: Route, event: Event, attempt: int) -> AbstractContextManager[None]:
        """Around one handler call: inside many events' span, the event's own `process` span."""
        ...

    def created(self, cause: Event, follow_ups: list[Event]) -> list[Event]:
        """The follow-ups, each with a creation context of its own (a `create` span linked to
        its cause) as its `traceparent`."""
        ...

    def failed(self, exc: BaseException) -> None:
        """The current run failed: the span's status."""
        ...

    def retrying(self, attempt: int, delay: float, reason: str) -> None:
        """A span event: the event runs again in `delay` seconds."""
        ...

    def dead_lettered(self, attempt: int, reason: str) -> None:
        """A span event: the event went to the dead-letter queue."""
        ...


class NoTracer:
    def processing(
        self, route: Route, events: Sequence[Event], attempt: int, message_id: str
    ) -> AbstractContextManager[None]:
        return nullcontext()

    def handling(self, route: Route, event: Event, attempt: int) -> AbstractContextManager[None]:
        return nullcontext()

    def created(self, cause: Event, follow_ups: list[Event]) -> list[Event]:
        return follow_ups

    def failed(self, exc: BaseException) -> None:
        return None

    def retrying(self, attempt: int, delay: float, reason: str) -> None:
        return None

    def dead_lettered(self, attempt: int, reason: str) -> None:
        return None
