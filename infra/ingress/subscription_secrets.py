"""Reads the clientState secrets of Graph subscriptions (the Graph domain's table) for the webhook.

Secrets found are remembered for `cache_seconds`, so a busy webhook does not read the database
on every notification, and answers from memory need no worker thread (`cached`). An id not in
the cache, or whose cached secret did not match, is read afresh (`fresh=True`) before an item is
refused, so a new or renewed subscription is never refused for a stale cache; a deleted one is
forgotten within `cache_seconds`.
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

    def cached(self, subscription_ids: Collection[str]) -> dict[str, str]:
        """The secrets of `subscription_ids` still fresh in memory; never blocks on I/O."""
        now = time.monotonic()
        found: dict[str, str] = {}
        with self._lock:
            for subscription_id in subscription_ids:
                cached = self._cache.get(subscription_id)
                if cached is not None and now - cached[1] < self._cache_seconds:
                    found[subscription_id] = cached[0]
        return found

    def client_states(self, subscription_ids: Collection[str], *, fresh: bool = False) -> dict[str, str]:
        """clientState by subscription id, for those of `subscription_ids` that exist."""
        found = {} if fresh else self.cached(subscription_ids)
        missing = [subscription_id for subscription_id in subscription_ids if subscription_id not in found]
        if missing:
            now = time.monotonic()
            query = select(graph_subscriptions.c.id, graph_subscriptions.c.client_state).where(
                graph_subscriptions.c.id.in_(missing)
            )
            with self._engine.connect() as connection:
                read = {row.id: row.client_state for row in connection.execute(query)}
            with self._lock:
                for subscription_id in missing:  # a deleted subscription's secret goes now, not later
                    self._cache.pop(subscription_id, None)
                self._cache.update((key, (value, now)) for key, value in read.items())
            found.update(read)
        return found
