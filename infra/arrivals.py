"""Events published to each queue, counted per minute in Redis by every process that publishes
(the web ingress, the CLI and Python API, workers' follow-ups, the bridges; not retries): the
queues page's "in / min". Keys: `{p}:arrivals:{minute}` (hash, queue -> events), kept an hour."""

from __future__ import annotations

import logging
import time

import redis
from redis import Redis

from infra import keys

log = logging.getLogger("fleet.arrivals")
KEEP_SECONDS = 3600


class Arrivals:
    def __init__(self, client: Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix

    def count(self, events_by_queue: dict[str, int], now: float | None = None) -> None:
        """Count events put on each queue; a Redis failure costs the count, never the publish."""
        key = keys.arrivals(self._prefix, int((now or time.time()) // 60))
        try:
            pipe = self._redis.pipeline(transaction=False)
            for queue, events in events_by_queue.items():
                pipe.hincrby(key, queue, events)
            pipe.expire(key, KEEP_SECONDS)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("arrivals on %s not counted: %s", sorted(events_by_queue), exc)

    def per_minute(self, window: float, now: float | None = None) -> dict[str, float]:
        """Events per minute put on each queue, averaged over the last `window` seconds."""
        now = now or time.time()
        minutes = range(int((now - window) // 60) + 1, int(now // 60) + 1)
        pipe = self._redis.pipeline(transaction=False)
        for minute in minutes:
            pipe.hgetall(keys.arrivals(self._prefix, minute))
        totals: dict[str, float] = {}
        for counts in pipe.execute():
            for queue, count in counts.items():
                name = queue.decode() if isinstance(queue, bytes) else str(queue)
                totals[name] = totals.get(name, 0.0) + int(count)
        return {queue: total * 60.0 / window for queue, total in totals.items()}
