"""Worker heartbeats in Redis: who is online, with its pool and when it was last heard from.

Each worker's main process writes `{p}:worker:{hostname}` (a hash: pid, concurrency, queues,
started, beat) every `INTERVAL` seconds with a TTL of three intervals, so a worker killed without
a goodbye drops out of `online()` within half a minute. The console and `fleet_workers_online`
read it; nothing keeps worker state in a process's memory.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from infra import keys as redis_keys

INTERVAL = 10.0


@dataclass(frozen=True, slots=True)
class Heartbeat:
    hostname: str
    pid: int
    concurrency: int
    queues: list[str]
    started: float
    beat: float


class RedisHeartbeats:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix

    def beat(self, hostname: str, *, pid: int, concurrency: int, queues: list[str], started: float) -> None:
        key = redis_keys.worker(self._prefix, hostname)
        fields: dict[Any, Any] = {
            "pid": pid,
            "concurrency": concurrency,
            "queues": json.dumps(queues),
            "started": started,
            "beat": time.time(),
        }
        pipe = self._redis.pipeline()
        pipe.hset(key, mapping=fields)
        pipe.expire(key, int(INTERVAL * 3))
        pipe.execute()

    def gone(self, hostname: str) -> None:
        self._redis.delete(redis_keys.worker(self._prefix, hostname))

    def online(self) -> list[Heartbeat]:
        # SCAN may return a key twice while Redis resizes its table: a set lists each worker once
        keys = sorted(set(self._redis.scan_iter(match=redis_keys.worker(self._prefix, "*"), count=500)))
        pipe = self._redis.pipeline()
        for key in keys:
            pipe.hgetall(key)
        beats = []
        for key, fields in zip(keys, pipe.execute(), strict=True):
            if not fields:  # expired between the scan and the read
                continue
            text = {k.decode(): v.decode() for k, v in fields.items()}
            beats.append(
                Heartbeat(
                    hostname=key.decode().removeprefix(redis_keys.worker(self._prefix, "")),
                    pid=int(text["pid"]),
                    concurrency=int(text["concurrency"]),
                    queues=json.loads(text["queues"]),
                    started=float(text["started"]),
                    beat=float(text["beat"]),
                )
            )
        return beats


class HeartbeatThread(threading.Thread):
    """Beats until stopped; a failed beat is logged by the caller's `on_error` and tried again."""

    def __init__(self, beat: Callable[[], None], on_error: Callable[[Exception], None]) -> None:
        super().__init__(name="fleet-heartbeat", daemon=True)
        self._beat = beat
        self._on_error = on_error
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.is_set():
            try:
                self._beat()
            except Exception as exc:
                self._on_error(exc)
            self._stopped.wait(INTERVAL)

    def stop(self) -> None:
        self._stopped.set()
