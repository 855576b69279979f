"""The attempt counter that survives worker deaths, kept in Redis (see infra/keys.py).

Retries carry the attempts already spent in the message they send (`attempt_base`); what a
message cannot carry is that its worker died while running it. So each message counts its own
starts (`_deliveries`); a redelivered message runs its events one at a time, counting each
event's runs, and an event whose count passes the limit is dead-lettered without running.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from infra import keys


@dataclass(frozen=True, slots=True)
class MessageStart:
    deliveries: int
    fell_back: bool
    """A first delivery that fell back to one event at a time, so its events' runs are counted."""


class RedisAttempts:
    """One round trip per message: a finished message's record is deleted in the pipeline that
    starts the next one, rather than by a round trip of its own."""

    FINISHED_BUFFER = 64

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix
        self._finished: list[str] = []

    def started(self, message_id: str) -> MessageStart:
        key = keys.message(self._prefix, message_id)
        pipe = self._redis.pipeline(transaction=False)
        if self._finished:
            pipe.delete(*self._finished)
        pipe.hincrby(key, "_deliveries", 1)
        pipe.hget(key, "_fallback")
        pipe.expire(key, keys.MESSAGE_TTL)
        *_, deliveries, fallback, _ = pipe.execute()
        self._finished.clear()
        return MessageStart(deliveries=int(deliveries), fell_back=fallback is not None)

    def falling_back(self, message_id: str) -> None:
        self._redis.hset(keys.message(self._prefix, message_id), "_fallback", 1)

    def run(self, message_id: str, event_digest: str) -> int:
        """Count one more run of an event in this message; returns the runs so far."""
        return int(self._redis.hincrby(keys.message(self._prefix, message_id), event_digest, 1))

    def finished(self, message_id: str) -> None:
        """Forget the message's record: at the next start, or now if many are waiting."""
        self._finished.append(keys.message(self._prefix, message_id))
        if len(self._finished) >= self.FINISHED_BUFFER:
            self.flush()

    def flush(self) -> None:
        if self._finished:
            self._redis.delete(*self._finished)
            self._finished.clear()
