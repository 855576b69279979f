"""The shape of a route: one event type's handler, task, queue and policies."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel

from handlers.envelope import Event
from handlers.retry import RetryPolicy

Handler = Callable[..., Iterable[Event] | None]
DataModel = type[BaseModel]


class Idempotency(StrEnum):
    """How a handler makes a redelivered event a no-op."""

    TRANSACTIONAL = "transactional"
    """The ledger row and the handler's database effects commit in one transaction."""
    CLAIM = "claim"
    """Effects outside the database: a leased claim before, completion after; a dead worker's
    lease expires and its successor takes over."""
    NATURAL = "natural"
    """The effect is idempotent by itself (a delete, a set); the handler's docstring says why."""


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """Open when, over `window` seconds, at least `min_calls` ran and `failure_ratio` of them failed."""

    failure_ratio: float = 0.5
    min_calls: int = 10
    window: float = 30.0
    cooldown: float = 15.0


@dataclass(frozen=True, slots=True)
class Route:
    type: str
    handler: Handler
    task: str
    queue: str
    idempotency: Idempotency
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    downstream: str | None = None
    """Name of the rate-limited downstream this handler calls (limits come from settings)."""
    breaker: BreakerPolicy | None = None
    lease: float = 300.0
    """Claim mode: how long a claim holds; the task's hard time limit stays below it."""
    data: DataModel | None = None
    """The model of the events' `data`, checked at every door (handlers/contracts.py); None takes
    any data, as routes of domains that have no model yet."""
    data_version: int = 1
    """The version of `data`'s released schema (handlers/compatibility.py); bump it for a breaking change."""

    @property
    def name(self) -> str:
        """The handler's stable name, used in the ledger and the dead-letter queue."""
        return self.task
