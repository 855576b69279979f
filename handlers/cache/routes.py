"""The cache domain's rows of the routing table."""

from __future__ import annotations

from handlers.cache import handlers as cache
from handlers.cache.data import CacheInvalidate
from handlers.retry import RetryPolicy
from handlers.routing import Idempotency, Route

ROUTES: tuple[Route, ...] = (
    Route(
        type="cache.invalidate",
        handler=cache.invalidate_cache,
        task="fleet.cache.invalidate",
        queue="fleet.cache",
        idempotency=Idempotency.NATURAL,
        data=CacheInvalidate,
        # Redis being down is an infrastructure failure (retried without spending attempts);
        # anything else is a bug worth a few quick tries, then the dead-letter queue.
        retry=RetryPolicy(max_attempts=5, base_delay=0.2, max_delay=5.0),
    ),
)
