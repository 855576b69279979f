"""Retries due later than `eta_max` wait in a Redis sorted set, not in a worker's memory.

A broker countdown keeps the message unacknowledged in a worker's memory until it is due (on
Redis under a lease the worker renews, docs/delivery.md); past RabbitMQ's consumer timeout the
channel would be closed. Long waits therefore live here, and `release_due()` (a beat task,
every second) hands them to the broker when due: it sends before it removes, so a crash between
the two repeats a send, which the ledger absorbs, and never loses one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import redis

from infra import keys


class RedisDelayed:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._key = keys.delayed(prefix)

    def add(self, message: dict[str, Any], due: float) -> None:
        self._redis.zadd(self._key, {json.dumps(message, sort_keys=True): due})

    def release_due(self, now: float, send: Callable[[dict[str, Any]], None], limit: int = 500) -> int:
        due = cast(list[bytes], self._redis.zrangebyscore(self._key, "-inf", now, start=0, num=limit))
        for member in due:
            send(json.loads(member))
            self._redis.zrem(self._key, member)
        return len(due)

    def size(self) -> int:
        return int(self._redis.zcard(self._key))
