"""The routing table: every event type the fleet handles, with its handler and policies.

One explicit, greppable table (`ROUTES`) maps an event type to its handler, the stable Celery
task name, the queue, how the handler stays idempotent, and its retry, rate-limit and
circuit-breaker policy. The domain issues add rows; nothing registers itself by import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from handlers.demo import handlers as demo
from handlers.envelope import Event
from handlers.errors import UnknownEventType
from handlers.retry import RetryPolicy

Handler = Callable[..., Iterable[Event] | None]


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

    @property
    def name(self) -> str:
        """The handler's stable name, used in the ledger and the dead-letter queue."""
        return self.task


ROUTES: Mapping[str, Route] = {
    route.type: route
    for route in (
        Route(
            type="demo.deposit_recorded",
            handler=demo.record_deposit,
            task="fleet.demo.record_deposit",
            queue="fleet.demo",
            idempotency=Idempotency.TRANSACTIONAL,
        ),
        Route(
            type="demo.receipt_requested",
            handler=demo.send_receipt,
            task="fleet.demo.send_receipt",
            queue="fleet.demo",
            idempotency=Idempotency.CLAIM,
            lease=60.0,
        ),
        Route(
            type="demo.flaky_requested",
            handler=demo.record_flaky_deposit,
            task="fleet.demo.record_flaky_deposit",
            queue="fleet.demo",
            idempotency=Idempotency.TRANSACTIONAL,
            retry=RetryPolicy(max_attempts=4, base_delay=0.2, max_delay=2.0),
            downstream="bank",
            breaker=BreakerPolicy(failure_ratio=0.5, min_calls=5, window=10.0, cooldown=2.0),
        ),
        Route(
            type="demo.crash_requested",
            handler=demo.crash_worker,
            task="fleet.demo.crash_worker",
            queue="fleet.demo",
            idempotency=Idempotency.TRANSACTIONAL,
            retry=RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=1.0),
        ),
    )
}


class Registry:
    """Lookup over a routing table; tests build one over their own table."""

    def __init__(self, routes: Mapping[str, Route] = ROUTES) -> None:
        self._by_type = dict(routes)
        self._by_task = {route.task: route for route in routes.values()}

    def route_for(self, event_type: str) -> Route:
        try:
            return self._by_type[event_type]
        except KeyError:
            raise UnknownEventType(event_type) from None

    def route_for_task(self, task: str) -> Route | None:
        return self._by_task.get(task)

    def routes(self) -> list[Route]:
        return list(self._by_type.values())

    def queues(self) -> list[str]:
        return sorted({route.queue for route in self._by_type.values()})

    def __repr__(self) -> str:
        return f"Registry({sorted(self._by_type)})"


def describe(route: Route) -> dict[str, Any]:
    """A route as plain data, for `fleet status` and the console."""
    return {
        "type": route.type,
        "task": route.task,
        "queue": route.queue,
        "idempotency": str(route.idempotency),
        "max_attempts": route.retry.max_attempts,
        "downstream": route.downstream,
    }
