"""Ports the fleet's handlers may ask for by keyword; adapters in `infra/` implement them.

Handlers name what they need in their signature (`def h(event, *, clock: Clock)`); the
composition root provides it. Per-delivery values are injected the same way:
`attempt: int` is the 1-based attempt this run is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from handlers.envelope import Event


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def sleep(self, seconds: float) -> None: ...


class Publisher(Protocol):
    def publish(self, events: Sequence[Event]) -> list[str]:
        """Validate all, then send all durably (returns once the broker holds them, with their
        ids in order) or raise; blocking."""
        ...
