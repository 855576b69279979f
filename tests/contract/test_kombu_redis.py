"""What the fleet relies on inside kombu's Redis transport and Celery's consumer, on real Redis:
the unacked records leases renew (infra/leases.py), kombu's sweep honouring them, and the BRPOP
read that sets stray entries aside (infra/redis_transport.py). Pinned: pyproject.toml."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery.utils.imports import symbol_by_name
from kombu import Connection, Exchange, Queue

from infra.leases import RedisLeases, index_key, kombu_held_tags, lease_step
from infra.redis_transport import Transport

LEASE = 20


@pytest.fixture
def queue() -> Queue:
    name = f"c{uuid.uuid4().hex[:8]}.q"
    return Queue(name, Exchange(name), routing_key=name)


@pytest.fixture
def strays() -> list[tuple[bytes, str, str]]:
    return []


@pytest.fixture
def connection(redis_url: str, strays: list[tuple[bytes, str, str]]) -> Iterator[Connection]:
    options = {"visibility_timeout": LEASE, "priority_steps": [0], "on_stray_entry": _sink(strays)}
    with Connection(redis_url, transport=Transport, transport_options=options) as connection:
        yield connection


def _sink(strays: list[tuple[bytes, str, str]]) -> Any:
    def sink(raw: bytes, queue: str, reason: str) -> None:
        if raw.startswith(b"refused"):
            raise RuntimeError("the store is down")
        strays.append((raw, queue, reason))

    return sink


def take_one(connection: Connection, queue: Queue) -> Any:
    """Consume one message as a worker does (acknowledged later) and return it."""
    got: list[Any] = []
    consumer = connection.Consumer(queue, callbacks=[lambda body, message: got.append(message)])
    consumer.consume()
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            connection.drain_events(timeout=1)
    assert got, "no message delivered"
    return got[0]


def test_a_renewed_lease_outlives_the_visibility_timeout_and_an_expired_one_is_swept(
    connection: Connection, queue: Queue, client: redis.Redis
) -> None:
    connection.Producer().publish({"n": 1}, exchange=queue.exchange, routing_key=queue.name, declare=[queue])
    message = take_one(connection, queue)
    channel = message.channel
    tag = message.delivery_tag
    assert kombu_held_tags(channel) == [tag]
    leases = RedisLeases(client, index_key(channel))
    assert client.zscore(index_key(channel), tag) is not None, "kombu records a taken message there"

    taken = time.time()
    assert leases.renew([tag], now=taken + 2 * LEASE) == []  # as if renewed for two leases
    channel.qos.restore_visible(num=None, interval=1)  # kombu's sweep, a lease later
    assert client.llen(queue.name) == 0, "a renewed lease must keep the message off its queue"

    client.zadd(index_key(channel), {tag: taken - LEASE - 1})  # its holder stopped renewing
    channel.qos.restore_visible(num=None, interval=1)
    assert client.llen(queue.name) == 1, "an expired lease puts the message back"
    assert json.loads(client.lindex(queue.name, 0) or b"{}")["properties"]["delivery_tag"] == tag
    assert leases.renew([tag]) == [tag], "a lease found gone is reported lost, not re-created"
    assert client.zscore(index_key(channel), tag) is None


def test_an_acknowledged_message_is_held_no_longer_and_its_lease_is_not_renewed(
    connection: Connection, queue: Queue, client: redis.Redis
) -> None:
    connection.Producer().publish({"n": 1}, exchange=queue.exchange, routing_key=queue.name, declare=[queue])
    message = take_one(connection, queue)
    message.ack()
    assert kombu_held_tags(message.channel) == []
    assert RedisLeases(client, index_key(message.channel)).renew([message.delivery_tag]) == [
        message.delivery_tag
    ]
    assert client.zscore(index_key(message.channel), message.delivery_tag) is None


def test_stray_entries_go_to_the_sink_raw_and_a_message_behind_them_is_delivered(
    connection: Connection, queue: Queue, client: redis.Redis, strays: list[tuple[bytes, str, str]]
) -> None:
    client.lpush(queue.name, b"\xff not json", b'{"body": "eA==", "headers": {}}', b"[1, 2]")
    connection.Producer().publish({"n": 1}, exchange=queue.exchange, routing_key=queue.name, declare=[queue])
    message = take_one(connection, queue)
    assert message.payload == {"n": 1}
    assert [(raw, name) for raw, name, _ in strays] == [
        (b"\xff not json", queue.name),
        (b'{"body": "eA==", "headers": {}}', queue.name),
        (b"[1, 2]", queue.name),
    ]
    assert strays[0][2].startswith("not JSON: ")
    assert strays[1][2] == "not a kombu message: no 'properties' object"
    assert strays[2][2] == "not a kombu message: a JSON list, not an object"


def test_a_stray_the_sink_refuses_goes_back_to_the_far_end_of_its_queue(
    connection: Connection, queue: Queue, client: redis.Redis
) -> None:
    client.lpush(queue.name, b"refused and not json")
    connection.Producer().publish({"n": 1}, exchange=queue.exchange, routing_key=queue.name, declare=[queue])
    assert take_one(connection, queue).payload == {"n": 1}
    assert client.lrange(queue.name, 0, -1) == [b"refused and not json"]


def test_the_lease_step_follows_celerys_task_consumer_step() -> None:
    step = lease_step(lambda **kw: redis.Redis.from_url("redis://127.0.0.1:6379/0", **kw), LEASE)
    (required,) = step.requires
    tasks = symbol_by_name(required)
    assert tasks.__module__ == "celery.worker.consumer.tasks"
    assert "task_consumer" in tasks.start.__code__.co_names, "the step reads c.task_consumer.channel"


def test_the_sentinel_transport_keeps_the_fleets_channel_on_a_pool_that_asks_the_sentinels(
    tmp_path: Any, queue: Queue
) -> None:
    from redis.sentinel import SentinelConnectionPool

    from infra.redis_transport import SentinelChannel, SentinelTransport
    from tests.support.redis_servers import MASTER_GROUP, sentinel_group

    with sentinel_group(tmp_path, replicas=1) as group:
        options = {"master_name": MASTER_GROUP, "priority_steps": [0], "consume_batch": 10}
        with Connection(group.url, transport=SentinelTransport, transport_options=options) as connection:
            channel = connection.default_channel
            assert isinstance(channel, SentinelChannel)
            assert isinstance(channel.client.connection_pool, SentinelConnectionPool)
            shared = channel._create_client()
            assert shared is channel._create_client(), "one client per channel, as on plain Redis"
            assert isinstance(shared.connection_pool, SentinelConnectionPool)
            with connection.Producer() as producer:
                for n in range(3):
                    producer.publish(
                        {"n": n}, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue]
                    )
            received: list[Any] = []
            with (
                connection.Consumer(
                    queue, callbacks=[lambda body, message: (received.append(body), message.ack())]
                ),
                contextlib.suppress(TimeoutError),
            ):
                while len(received) < 3:
                    connection.drain_events(timeout=5)
            assert sorted(body["n"] for body in received) == [0, 1, 2]
            master = redis.Redis(port=group.master.port)
            assert master.llen(queue.name) == 0, "the messages lived on the master the sentinels named"
            master.close()


def test_a_channel_closed_while_redis_is_gone_leaves_its_messages_to_the_sweep_and_raises_nothing(
    tmp_path: Any, queue: Queue
) -> None:
    from tests.support.redis_servers import start_redis

    server = start_redis(tmp_path / "redis")
    url = f"redis://127.0.0.1:{server.port}/0"
    connection = Connection(url, transport=Transport, transport_options={"priority_steps": [0]})
    try:
        with connection.Producer() as producer:
            producer.publish(
                {"n": 1}, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue]
            )
        held: list[Any] = []
        consumer = connection.Consumer(queue, callbacks=[lambda body, message: held.append(message)])
        consumer.consume()
        connection.drain_events(timeout=5)
        assert len(held) == 1, "delivered, not acknowledged: recorded in `unacked`"
        server.kill()
        connection.release()  # kombu restores on close: it fails, and must not fail kombu's own check
        held[0].ack()  # a task that ends after its channel closed: left to the sweep, nothing raised
    finally:
        server.kill()


def test_with_min_replicas_a_kombu_publish_returns_once_a_replica_holds_it_and_raises_while_none_does(
    tmp_path: Any, queue: Queue
) -> None:
    from infra.redis_clients import NotReplicated
    from tests.support.redis_servers import start_redis

    master = start_redis(tmp_path / "master")
    replica = None
    options = {"priority_steps": [0], "min_replicas": 1, "replica_timeout": 0.2}
    url = f"redis://127.0.0.1:{master.port}/0"
    probe = redis.Redis(port=master.port)
    try:
        with Connection(url, transport=Transport, transport_options=options) as connection:
            producer = connection.Producer()
            with pytest.raises(NotReplicated):  # what the workers' retries and follow-ups hear
                producer.publish(
                    {"n": 1}, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue]
                )
            replica = start_redis(tmp_path / "replica", "--replicaof", "127.0.0.1", str(master.port))
            deadline = time.monotonic() + 20
            while probe.info("replication").get("slave0", {}).get("state") != "online":
                assert time.monotonic() < deadline, "the replica never came online"
                time.sleep(0.1)
            producer.publish({"n": 2}, exchange=queue.exchange, routing_key=queue.routing_key)
            assert probe.info("commandstats")["cmdstat_wait"]["calls"] == 2
            assert redis.Redis(port=replica.port).llen(queue.name) == 2, "the replica holds what was sent"
    finally:
        probe.close()
        for server in (replica, master):
            if server is not None:
                server.kill()
