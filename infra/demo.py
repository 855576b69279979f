"""Adapters of the demo domain's ports."""

from __future__ import annotations

import json
import time

import redis
from sqlalchemy import Connection

from infra.db import insert_rows
from infra.schema import demo_deposits


class SqlDepositBook:
    """Buffers deposits and writes them in one statement when the transaction flushes."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._rows: list[dict[str, object]] = []

    def add(self, *, account: str, amount: int, event_id: str) -> None:
        self._rows.append({"account": account, "amount": amount, "event_id": event_id})

    def flush(self) -> None:
        if self._rows:
            now = time.time()
            for row in self._rows:
                row["recorded_at"] = now
            insert_rows(self._connection, demo_deposits, self._rows)
            self._rows = []


class RedisReceiptSender:
    """The demo's outside world: receipts land on a Redis list, one JSON entry per send."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self.key = f"{prefix}:demo:receipts"

    def send(self, *, to: str, text: str, key: str) -> None:
        self._redis.rpush(self.key, json.dumps({"to": to, "text": text, "key": key}))


class RedisDownstreamSwitch:
    """A downstream is down while the key `{prefix}:demo:down:{name}` exists."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix

    def key(self, name: str) -> str:
        return f"{self._prefix}:demo:down:{name}"

    def is_up(self, name: str) -> bool:
        return not self._redis.exists(self.key(name))


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
