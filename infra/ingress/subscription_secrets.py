"""Reads the clientState secrets of Graph subscriptions (the Graph domain's table) for the webhook.

Secrets found are kept in memory, so a busy webhook does not read the database on every
notification, and answers from memory need no worker thread (`cached`). An id not in memory, or
whose remembered secret did not match, is read afresh (`fresh=True`) before an item is refused,
so a new or renewed subscription is never refused for a stale copy.

A copy is kept only while the process hears the secrets channel: whoever changes or removes a
subscription broadcasts its id there (`RedisSecretBroadcast`, called by the subscription store),
and every web process drops its copy at once, so an old secret stops being accepted when its
subscription is removed or given a new one. The channel is the cache's first-tier machinery
(infra/cache/local_tier.py): while it is not heard, nothing is kept and every secret is read from the
database; pub/sub being at most once, a copy also lives at most `cache_seconds`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Collection
from datetime import UTC, datetime

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import SQLAlchemyError

from infra import keys
from infra.cache.local_tier import InvalidationListener, LocalTier
from infra.graph.schema import graph_subscriptions

log = logging.getLogger("fleet.ingress")
NOTIFIED_EVERY = 5.0
"""Seconds between two writes of one subscription's last notification time by one process: a
busy subscription costs the database a row update every few seconds, not one per request."""


def secrets_channel(key_prefix: str) -> str:
    return keys.graph_secrets_channel(key_prefix)


class RedisSecretBroadcast:
    """Tells every web process that these subscriptions' secrets changed or are gone."""

    def __init__(self, client: Redis, key_prefix: str) -> None:
        self._client = client
        self._channel = secrets_channel(key_prefix)

    def changed(self, subscription_ids: Collection[str]) -> None:
        try:
            self._client.publish(self._channel, json.dumps({"keys": sorted(subscription_ids)}))
        except RedisError:  # the change stands; copies still expire within their lifetime
            log.warning("could not broadcast changed subscription secrets %s", sorted(subscription_ids))


class SqlSubscriptionSecrets:
    def __init__(
        self, engine: Engine, client: Redis, key_prefix: str, *, cache_seconds: float = 30.0
    ) -> None:
        self._engine = engine
        self._copies = LocalTier(ttl=cache_seconds)
        self._listener = InvalidationListener(client, secrets_channel(key_prefix), self._copies)
        self._notified: dict[str, float] = {}
        self._notified_lock = threading.Lock()

    def cached(self, subscription_ids: Collection[str]) -> dict[str, str]:
        """The secrets of `subscription_ids` held in memory; never blocks on I/O."""
        self._listener.start(timeout=None)  # at the first request: in the serving process
        found: dict[str, str] = {}
        for subscription_id in subscription_ids:
            copy = self._copies.get(subscription_id)
            if copy is not None:
                found[subscription_id] = copy.decode()
        return found

    def client_states(self, subscription_ids: Collection[str], *, fresh: bool = False) -> dict[str, str]:
        """clientState by subscription id, for those of `subscription_ids` that exist."""
        found = {} if fresh else self.cached(subscription_ids)
        missing = [subscription_id for subscription_id in subscription_ids if subscription_id not in found]
        if missing:
            epoch = self._copies.epoch  # a broadcast during the read: the read may be stale, keep none
            query = select(graph_subscriptions.c.id, graph_subscriptions.c.client_state).where(
                graph_subscriptions.c.id.in_(missing)
            )
            with self._engine.connect() as connection:
                read = {row.id: row.client_state for row in connection.execute(query)}
            for subscription_id, state in read.items():
                self._copies.put(subscription_id, state.encode(), (), epoch)
            gone = [subscription_id for subscription_id in missing if subscription_id not in read]
            if gone:
                self._copies.drop(keys=gone)
            found.update(read)
        return found

    def notified(self, subscription_ids: Collection[str]) -> None:
        """Record that notifications of these subscriptions arrived now (the console's "last
        notification"); blocks on the database, so the webhook calls it after answering."""
        now = time.monotonic()
        with self._notified_lock:
            due = [
                i for i in subscription_ids if now - self._notified.get(i, -NOTIFIED_EVERY) >= NOTIFIED_EVERY
            ]
            self._notified.update(dict.fromkeys(due, now))
        if due:
            query = (
                update(graph_subscriptions)
                .where(graph_subscriptions.c.id.in_(sorted(due)))  # in one order: no deadlock between writers
                .values(last_notification_at=datetime.now(UTC))
            )
            try:
                with self._engine.begin() as connection:
                    connection.execute(query)
            except SQLAlchemyError as exc:  # observability only: the notifications were enqueued
                log.warning("last notification time of %s not recorded: %s", due, exc)

    def close(self) -> None:
        self._listener.stop()
