"""Ports the fleet's handlers may ask for by keyword; adapters in `infra/` implement them.

Handlers name what they need in their signature (`def h(event, *, clock: Clock)`); the
composition root provides it. Per-delivery values are injected the same way:
`attempt: int` is the 1-based attempt this run is.
"""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def sleep(self, seconds: float) -> None: ...
