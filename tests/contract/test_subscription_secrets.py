"""The Graph webhook's copies of subscription secrets, on real PostgreSQL and Redis: served from
memory once read, dropped at once when the subscription store removes or re-keys a subscription
(broadcast), kept at most their lifetime otherwise, and never kept while the broadcast is not
heard."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy import Engine, delete

from handlers.graph.ports import Subscription
from infra.graph.schema import graph_subscriptions
from infra.graph.store import SqlSubscriptions
from infra.ingress.subscription_secrets import RedisSecretBroadcast, SqlSubscriptionSecrets
from tests.support.processes import free_port, wait_until


def subscription(subscription_id: str, state: str) -> Subscription:
    return Subscription(
        id=subscription_id,
        resource="users",
        change_type="updated",
        notification_url="https://example.test/graph",
        lifecycle_url=None,
        client_state=state,
        expires_at=datetime.now(UTC) + timedelta(days=1),
    )


@pytest.fixture
def prefix() -> str:
    return f"ss{uuid.uuid4().hex[:8]}"


@pytest.fixture
def store(engine: Engine, client: redis.Redis, prefix: str) -> SqlSubscriptions:
    return SqlSubscriptions(engine, RedisSecretBroadcast(client, prefix).changed)


def _listening(secrets: SqlSubscriptionSecrets, subscription_id: str, state: str) -> None:
    """Wait until the copy of `subscription_id` is served from memory (the listener subscribed)."""

    def served() -> bool:
        secrets.client_states([subscription_id])
        return secrets.cached([subscription_id]) == {subscription_id: state}

    wait_until(served, timeout=10, what="the secret served from memory")


@pytest.fixture
def secrets(engine: Engine, client: redis.Redis, prefix: str) -> Iterator[SqlSubscriptionSecrets]:
    secrets = SqlSubscriptionSecrets(engine, client, prefix)
    yield secrets
    secrets.close()


def test_a_removed_subscriptions_secret_is_forgotten_at_once(
    store: SqlSubscriptions, secrets: SqlSubscriptionSecrets
) -> None:
    store.save(subscription("s-1", "old-secret"))
    _listening(secrets, "s-1", "old-secret")
    store.remove("s-1")
    wait_until(lambda: secrets.cached(["s-1"]) == {}, timeout=1, interval=0.01, what="the copy dropped")
    assert secrets.client_states(["s-1"]) == {}


def test_a_rekeyed_subscriptions_old_secret_is_forgotten_at_once(
    store: SqlSubscriptions, secrets: SqlSubscriptionSecrets
) -> None:
    store.save(subscription("s-1", "old-secret"))
    store.save(subscription("s-2", "other-secret"))
    _listening(secrets, "s-1", "old-secret")
    _listening(secrets, "s-2", "other-secret")
    store.save(subscription("s-1", "new-secret"))
    wait_until(lambda: "s-1" not in secrets.cached(["s-1"]), timeout=1, interval=0.01, what="old copy gone")
    assert secrets.cached(["s-2"]) == {"s-2": "other-secret"}, "only the changed one is dropped"
    assert secrets.client_states(["s-1"]) == {"s-1": "new-secret"}


def test_a_change_nobody_broadcast_is_seen_when_the_copy_expires(
    engine: Engine, client: redis.Redis, prefix: str
) -> None:
    SqlSubscriptions(engine).save(subscription("s-1", "secret"))  # a store that tells nobody
    secrets = SqlSubscriptionSecrets(engine, client, prefix, cache_seconds=0.5)
    try:
        _listening(secrets, "s-1", "secret")
        with engine.begin() as connection:
            connection.execute(delete(graph_subscriptions))
        assert secrets.cached(["s-1"]) == {"s-1": "secret"}  # not told: still held, for now
        wait_until(lambda: secrets.cached(["s-1"]) == {}, timeout=2, interval=0.05, what="the copy expired")
    finally:
        secrets.close()


def test_nothing_is_kept_while_the_broadcast_cannot_be_heard(engine: Engine, prefix: str) -> None:
    SqlSubscriptions(engine).save(subscription("s-1", "secret"))
    deaf = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    secrets = SqlSubscriptionSecrets(engine, deaf, prefix)
    try:
        assert secrets.client_states(["s-1"]) == {"s-1": "secret"}  # read from the database
        assert secrets.cached(["s-1"]) == {}, "not kept: a removal could not reach this copy"
    finally:
        secrets.close()
        deaf.close()
