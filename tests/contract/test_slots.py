"""Downstream slots against the real Redis: the cap, giving back, a dead holder's slot freed."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
import redis

from infra import keys
from infra.slots import RedisSlots
from infra.throttle import RedisGate
from tests.contract.test_throttle import route


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _gone_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_full_downstream_postpones_the_message_and_a_given_back_slot_admits_it(client: redis.Redis) -> None:
    prefix, scope = f"t{uuid.uuid4().hex[:6]}", "host:1"
    slots = RedisSlots(client, prefix, scope, {"graph": 1}, pool_size=4)
    gate = RedisGate(client, prefix, {}, slots)
    graph, other = route(downstream="graph"), route()
    key = keys.slots(prefix, scope, "graph")
    client.zadd(key, {str(os.getppid()): 1e12})  # another pool process of the worker holds the slot
    granted, wait = gate.admit(graph, 3)
    assert granted == 0 and 0.5 <= wait <= 1.5
    assert gate.admit(other, 3) == (3, 0.0), "routes of other downstreams are not held back"
    client.zrem(key, str(os.getppid()))  # it gave its slot back
    assert gate.admit(graph, 3) == (3, 0.0)
    assert client.zrange(key, 0, -1) == [str(os.getpid()).encode()]
    gate.release(graph)
    assert client.zcard(key) == 0
    assert slots.limit("payments") == 3, "a downstream not named: the pool less one"


def test_the_slot_of_a_pool_process_that_died_holding_it_is_freed(client: redis.Redis) -> None:
    prefix, scope = f"t{uuid.uuid4().hex[:6]}", "host:2"
    slots = RedisSlots(client, prefix, scope, {}, pool_size=2)
    key = keys.slots(prefix, scope, "graph")
    client.zadd(key, {str(_gone_pid()): 1e12})
    assert slots.take("graph", lease=60.0)
    assert client.zrange(key, 0, -1) == [str(os.getpid()).encode()]
    slots.give_back()
