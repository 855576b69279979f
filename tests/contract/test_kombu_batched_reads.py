"""What consumer-side batching relies on inside kombu's Redis transport and Celery's consumer, on
real Redis: a read taking many messages at once (the `_TAKE` script), each recorded as
unacked as kombu would, a batch acknowledged in one pipeline, and the strategy seam (workers/batching.py).
Pinned: pyproject.toml."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery.worker import state
from celery.worker.request import Request
from celery.worker.strategy import default as default_strategy
from kombu import Connection, Exchange, Queue

from infra.leases import index_key, kombu_held_tags
from infra.redis_transport import Transport, ack_messages

LEASE = 20


@pytest.fixture
def queue() -> Queue:
    name = f"b{uuid.uuid4().hex[:8]}.q"
    return Queue(name, Exchange(name), routing_key=name)


@pytest.fixture
def strays() -> list[bytes]:
    return []


@pytest.fixture
def connection(redis_url: str, strays: list[bytes]) -> Iterator[Connection]:
    options = {
        "visibility_timeout": LEASE,
        "priority_steps": [0],
        "consume_batch": 50,
        "on_stray_entry": lambda raw, queue, reason: strays.append(raw),
    }
    with Connection(redis_url, transport=Transport, transport_options=options) as connection:
        yield connection


def one_read(connection: Connection, queue: Queue, prefetch: int | None = None) -> list[Any]:
    """The messages one read of the transport delivers (acknowledged later, as a worker does)."""
    got: list[Any] = []
    consumer = connection.Consumer(queue, callbacks=[lambda body, message: got.append(message)])
    if prefetch:
        consumer.qos(prefetch_count=prefetch)
    consumer.consume()
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            connection.drain_events(timeout=1)
    return got


def publish(connection: Connection, queue: Queue, count: int) -> None:
    producer = connection.Producer()
    for n in range(count):
        producer.publish({"n": n}, exchange=queue.exchange, routing_key=queue.name, declare=[queue])


def test_one_read_takes_every_waiting_message_in_order_each_recorded_as_kombu_records_it(
    connection: Connection, queue: Queue, client: redis.Redis
) -> None:
    publish(connection, queue, 7)
    messages = one_read(connection, queue)
    assert [message.payload for message in messages] == [{"n": n} for n in range(7)]
    channel = messages[0].channel
    tags = [message.delivery_tag for message in messages]
    assert sorted(kombu_held_tags(channel)) == sorted(tags), "held, so live workers renew their leases"
    assert client.zcard(index_key(channel)) == 7
    assert client.hlen(channel.unacked_key) == 7
    info = messages[0].delivery_info
    record = json.loads(client.hget(channel.unacked_key, tags[0]) or b"[]")
    assert record == [messages[0]._raw, info["exchange"], info["routing_key"]], "kombu's own record"

    expired = time.time() - LEASE - 1  # as if the worker died: nobody renews
    client.zadd(index_key(channel), dict.fromkeys(tags, expired))
    channel.qos.restore_visible(num=None, interval=1)
    assert client.llen(queue.name) == 7, "a dead worker's batch goes back whole"


def test_a_batch_is_acknowledged_in_one_pipeline_and_held_no_longer(
    connection: Connection, queue: Queue, client: redis.Redis
) -> None:
    publish(connection, queue, 5)
    messages = one_read(connection, queue)
    assert len(messages) == 5
    ack_messages(messages)
    assert all(message.acknowledged for message in messages)
    assert kombu_held_tags(messages[0].channel) == []
    assert client.zcard(index_key(messages[0].channel)) == 0
    assert client.hlen(messages[0].channel.unacked_key) == 0


def test_a_read_takes_no_more_than_the_prefetch_window_has_room_for(
    connection: Connection, queue: Queue, client: redis.Redis
) -> None:
    publish(connection, queue, 10)
    assert len(one_read(connection, queue, prefetch=3)) == 3
    assert client.llen(queue.name) == 7


def test_stray_entries_in_a_batch_are_set_aside_and_the_messages_around_them_delivered(
    connection: Connection, queue: Queue, client: redis.Redis, strays: list[bytes]
) -> None:
    publish(connection, queue, 2)
    client.lpush(queue.name, b"not json")
    publish(connection, queue, 1)
    messages = one_read(connection, queue)
    assert [message.payload["n"] for message in messages] == [0, 1, 0]
    assert strays == [b"not json"]
    assert client.hlen(messages[0].channel.unacked_key) == 3


def test_celerys_strategy_seam_is_where_the_batcher_expects_it() -> None:
    assert "on_task_request" in default_strategy.__code__.co_names, "requests go to the pool through it"
    for name in ("kwargs", "delivery_info", "request_dict", "message", "eta"):
        assert isinstance(getattr(Request, name), property), name
    assert Request.acknowledged is False, "a flag the batcher sets once it acknowledged the message"
    assert callable(state.task_ready)


def test_an_entry_the_script_records_but_kombu_cannot_deliver_is_set_aside_and_not_left_held(
    connection: Connection, queue: Queue, client: redis.Redis, strays: list[bytes]
) -> None:
    odd = {
        "body": "eA==",
        "properties": {
            "delivery_tag": "odd-1",
            "body_encoding": "rot13",
            "delivery_info": {"exchange": queue.name, "routing_key": queue.name},
        },
    }
    publish(connection, queue, 1)
    client.lpush(queue.name, json.dumps(odd).encode())
    publish(connection, queue, 1)
    messages = one_read(connection, queue)
    assert len(messages) == 2
    assert [json.loads(raw)["properties"]["delivery_tag"] for raw in strays] == ["odd-1"]
    assert client.hget(messages[0].channel.unacked_key, "odd-1") is None
    assert client.zscore(index_key(messages[0].channel), "odd-1") is None
