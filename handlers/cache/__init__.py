"""Cache invalidation: `cache.invalidate` events drop keys, tags and key patterns from the shared
cache and from every process's first tier."""
