"""Reads the clientState secrets of Graph subscriptions (the Graph domain's table) for the webhook.

Secrets found are remembered for `cache_seconds`, so a busy webhook does not read the database
on every notification; an id not in the cache, or whose cached secret did not match, is read
afresh (`fresh=True`), so a new or renewed subscription is never refused for a stale cache.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection

from sqlalchemy import Engine, select

from infra.graph.schema import graph_subscriptions


class SqlSubscriptionSecrets:
    def __init__(self, engine: Engine, *, cache_seconds: float = 30.0) -> None:
        self._engine = engine
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def client_states(self, subscription_ids: Collection[str], *, fresh: bool = False) -> dict[str, str]:
        """clientState by subscription id, for those of `subscription_ids` that exist."""
        now = time.monotonic()
        found: dict[str, str] = {}
        with self._lock:
            for subscription_id in subscription_ids if not fresh else ():
                cached = self._cache.get(subscription_id)
                if cached is not None and now - cached[1] < self._cache_seconds:
                    found[subscription_id] = cached[0]
        missing = [subscription_id for subscription_id in subscription_ids if subscription_id not in found]
        if missing:
            query = select(graph_subscriptions.c.id, graph_subscriptions.c.client_state).where(
                graph_subscriptions.c.id.in_(missing)
            )
            with self._engine.connect() as connection:
                read = {row.id: row.client_state for row in connection.execute(query)}
            with self._lock:
                self._cache.update((key, (value, now)) for key, value in read.items())
            found.update(read)
        return found
