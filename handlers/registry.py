"""The routing table: every event type the fleet handles, with its handler and policies.

One explicit, greppable table (`ROUTES`) maps an event type to its handler, the stable Celery
task name, the queue, how the handler stays idempotent, and its retry, rate-limit and
circuit-breaker policy. The domain issues add rows; nothing registers itself by import.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from handlers.cache.routes import ROUTES as CACHE_ROUTES
from handlers.demo.routes import ROUTES as DEMO_ROUTES
from handlers.errors import UnknownEventType
from handlers.graph.routes import ROUTES as GRAPH_ROUTES
from handlers.orders.routes import ROUTES as ORDER_ROUTES
from handlers.routing import BreakerPolicy, Handler, Idempotency, Route

__all__ = ["ROUTES", "BreakerPolicy", "Handler", "Idempotency", "Registry", "Route", "describe"]

# One tuple of rows per domain (handlers/<domain>/routes.py); add a domain with one line here.
_DOMAINS: tuple[tuple[Route, ...], ...] = (DEMO_ROUTES, CACHE_ROUTES, GRAPH_ROUTES, ORDER_ROUTES)


def _table(domains: tuple[tuple[Route, ...], ...]) -> dict[str, Route]:
    table: dict[str, Route] = {}
    for route in (route for domain in domains for route in domain):
        if route.type in table:
            raise ValueError(f"event type {route.type!r} is routed twice")
        table[route.type] = route
    return table


ROUTES: Mapping[str, Route] = _table(_DOMAINS)


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
