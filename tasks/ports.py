"""What the dispatcher is given: transaction-bound ports, the rate-limit gate, the recorder."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Table

from handlers.routing import Route


class TransactionPort(Protocol):
    """A port bound to the handler's transaction; `flush()` writes what it buffered."""

    def flush(self) -> None: ...


class InsertPort(Protocol):
    """A port that only buffers rows to insert into one table. A handler whose ports are all of
    this kind runs before the database is touched, and its rows are inserted with its ledger row
    in one statement (infra/guarded_writes.py)."""

    table: Table

    def take(self) -> list[dict[str, Any]]:
        """The rows buffered since the last call, ready to insert."""
        ...


class Gate(Protocol):
    """Rate limits and circuit breakers (infra/throttle.py)."""

    def admit(self, route: Route, wanted: int) -> tuple[int, float]:
        """How many of `wanted` events may run now, and in how many seconds the rest may."""
        ...

    def record(self, route: Route, ok: int = 0, failed: int = 0) -> None:
        """Outcomes of runs, for the route's circuit breaker."""
        ...


class Recorder(Protocol):
    """Counts what the dispatcher does (infra/metrics.py PrometheusRecorder)."""

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


class OpenGate:
    """No limits: every event runs now."""

    def admit(self, route: Route, wanted: int) -> tuple[int, float]:
        return wanted, 0.0

    def record(self, route: Route, ok: int = 0, failed: int = 0) -> None:
        return None
