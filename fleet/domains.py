"""What a domain package imports to declare itself: the `Domain`, its ports, its routes, the
envelope and the errors its handlers raise (docs/adding-an-event-type.md).

    from fleet.domains import Domain, DomainPorts, Idempotency, Route
    DOMAIN = Domain(name="tickets", routes=ROUTES, ports=ports, migrations=...)
"""

from __future__ import annotations

from handlers.domains import Domain, DomainPorts
from handlers.envelope import Event, follow_up
from handlers.errors import InvalidEvent, RateLimited, RetryableError
from handlers.ports import Clock
from handlers.retry import RetryPolicy
from handlers.routing import BreakerPolicy, Idempotency, Route
from infra.domain_context import DomainContext

__all__ = [
    "BreakerPolicy",
    "Clock",
    "Domain",
    "DomainContext",
    "DomainPorts",
    "Event",
    "Idempotency",
    "InvalidEvent",
    "RateLimited",
    "RetryPolicy",
    "RetryableError",
    "Route",
    "follow_up",
]
