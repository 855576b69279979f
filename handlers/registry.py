"""The routing table: every event type the fleet handles, with its handler and policies.

The table maps an event type to its handler, the stable Celery task name, the queue, how the
handler stays idempotent, and its retry, rate-limit and circuit-breaker policy. It is assembled
from the enabled domains' rows (handlers/domains.py: each domain's `routes`, found through the
`fleet.domains` entry points); nothing registers itself by import.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from handlers.domains import Domain, installed_domains, route_table
from handlers.errors import UnknownEventType
from handlers.routing import BreakerPolicy, Handler, Idempotency, Route

__all__ = ["BreakerPolicy", "Handler", "Idempotency", "Registry", "Route", "describe"]


def __getattr__(name: str) -> Any:
    # `ROUTES`: every installed domain's rows, read from the entry points when first asked for.
    if name == "ROUTES":
        return route_table(installed_domains().values())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Registry:
    """Lookup over a routing table: the enabled domains' (`for_domains`), every installed
    domain's when none is given; tests build one over their own table."""

    def __init__(self, routes: Mapping[str, Route] | None = None) -> None:
        if routes is None:
            routes = route_table(installed_domains().values())
        self._by_type = dict(routes)
        self._by_task = {route.task: route for route in routes.values()}

    @classmethod
    def for_domains(cls, domains: Iterable[Domain]) -> Registry:
        return cls(route_table(domains))

    def route_for(self, event_type: str) -> Route:
        try:
            return self._by_type[event_type]
        except KeyError:
            raise UnknownEventType(event_type) from None

    def with_leases(self, leases: Mapping[str, float]) -> Registry:
        """This table with the claim leases of some event types set by configuration."""
        routes = dict(self._by_type)
        for event_type, lease in leases.items():
            route = self.route_for(event_type)
            if route.idempotency is not Idempotency.CLAIM:
                raise ValueError(
                    f"{event_type!r} is a {route.idempotency} route: only claim routes have a lease"
                )
            if lease <= 0:
                raise ValueError(f"{event_type!r}: a lease must be positive, not {lease}")
            routes[event_type] = dataclasses.replace(route, lease=lease)
        return Registry(routes)

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
