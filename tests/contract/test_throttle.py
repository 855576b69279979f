"""The token bucket and circuit breaker, against the real Redis and its clock."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from handlers.demo.handlers import record_deposit
from handlers.registry import BreakerPolicy, Idempotency, Route
from infra.throttle import RedisGate


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def route(**changes: object) -> Route:
    fields: dict[str, object] = {
        "type": "demo.t",
        "handler": record_deposit,
        "task": f"fleet.test.{uuid.uuid4().hex[:6]}",
        "queue": "q",
        "idempotency": Idempotency.TRANSACTIONAL,
    }
    return Route(**{**fields, **changes})  # type: ignore[arg-type]


def test_the_bucket_grants_a_burst_then_paces_at_the_rate(client: redis.Redis) -> None:
    gate = RedisGate(client, f"t{uuid.uuid4().hex[:6]}", {"bank": 10.0})
    limited = route(downstream="bank")
    granted, wait = gate.admit(limited, 25)
    assert granted == 10, "one second's worth of burst"
    assert 0 < wait <= 0.1
    time.sleep(0.35)
    granted, _ = gate.admit(limited, 25)
    assert 3 <= granted <= 4
    assert gate.admit(route(), 1000) == (1000, 0.0), "routes without a downstream are never limited"


def test_the_breaker_opens_on_failures_probes_after_cooldown_and_closes_on_success(
    client: redis.Redis,
) -> None:
    gate = RedisGate(client, f"t{uuid.uuid4().hex[:6]}", {})
    guarded = route(breaker=BreakerPolicy(failure_ratio=0.5, min_calls=4, window=10, cooldown=0.5))
    assert gate.admit(guarded, 5) == (5, 0.0)
    gate.record(guarded, ok=2, failed=1)
    assert gate.admit(guarded, 5) == (5, 0.0), "3 calls are under min_calls"
    gate.record(guarded, failed=1)  # 2 of 4 failed: open
    granted, wait = gate.admit(guarded, 5)
    assert granted == 0 and 0 < wait <= 0.5
    time.sleep(0.55)
    assert gate.admit(guarded, 5)[0] == 1, "half-open: one probe"
    assert gate.admit(guarded, 5)[0] == 0, "only one probe at a time"
    gate.record(guarded, failed=1)  # the probe failed: open again
    assert gate.admit(guarded, 5)[0] == 0
    time.sleep(0.55)
    assert gate.admit(guarded, 5)[0] == 1
    gate.record(guarded, ok=1)  # the probe succeeded: closed
    assert gate.admit(guarded, 5) == (5, 0.0)
