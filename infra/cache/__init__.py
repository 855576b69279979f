"""The tagged cache library: read-through values in Redis with tags, patterns and generations
(`tagged`), and an optional first tier in process memory kept honest by invalidation messages
(`local_tier`). Applications around the fleet import it as `fleet.cache`."""

from infra.cache.local_tier import InvalidationListener, LocalTier
from infra.cache.tagged import TaggedCache

__all__ = ["InvalidationListener", "LocalTier", "TaggedCache"]
