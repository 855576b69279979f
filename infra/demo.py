"""Adapters of the demo domain's ports."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from infra import keys
from infra.schema import demo_deposits


class SqlDepositBook:
    """Buffers deposits; the dispatcher inserts them with the ledger row (an `InsertPort`)."""

    table = demo_deposits

    def __init__(self) -> None:
        self._rows: list[dict[str, Any]] = []

    def add(self, *, account: str, amount: int, event_id: str) -> None:
        self._rows.append({"account": account, "amount": amount, "event_id": event_id})

    def take(self) -> list[dict[str, Any]]:
        rows, self._rows = self._rows, []
        now = time.time()  # just before the rows are written: the benchmark's "recorded"
        for row in rows:
            row["recorded_at"] = now
        return rows


class RedisReceiptSender:
    """The demo's outside world: receipts land on a Redis list, one JSON entry per send."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self.key = keys.demo_receipts(prefix)

    def send(self, *, to: str, text: str, key: str) -> None:
        self._redis.rpush(self.key, json.dumps({"to": to, "text": text, "key": key}))


class RedisDownstreamSwitch:
    """A downstream is down while its key exists (infra/keys.py `demo_down`)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix

    def key(self, name: str) -> str:
        return keys.demo_down(self._prefix, name)

    def is_up(self, name: str) -> bool:
        return not self._redis.exists(self.key(name))


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
