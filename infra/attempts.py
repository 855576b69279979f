"""The attempt counter that survives worker deaths, kept in Redis (see infra/keys.py).

Retries carry the attempts already spent in the message they send (`attempt_base`); what a
message cannot carry is that its worker died while running it. So each message counts its own
starts (`_deliveries`); a redelivered message runs its events one at a time, counting each
event's runs, and an event whose count passes the limit is dead-lettered without running.
"""

from __future__ import annotations

import contextlib
from typing import Any

import redis

from engine.records import MessageStart
from infra import keys


class PendingStart:
    """A start written to Redis whose replies are not read yet.

    Written before the handlers run, so a worker that dies in a handler has been counted: the
    kernel delivers what was written to the socket whatever becomes of the process. Reading the
    reply can wait until the effects are committed when the broker vouches that this is the
    message's first delivery; a redelivered message reads it first, to learn its deliveries.
    """

    def __init__(self, pool: redis.ConnectionPool, commands: list[tuple[Any, ...]]) -> None:
        self._pool = pool
        self._replies = len(commands)
        connection: Any = pool.get_connection()  # redis-py leaves these methods untyped
        self._connection = connection
        self._start: MessageStart | None = None
        try:
            connection.send_packed_command(connection.pack_commands(commands))
        except BaseException:
            self._give_back(broken=True)
            raise

    def result(self) -> MessageStart:
        if self._start is None:
            if self._connection is None:
                raise redis.ConnectionError("the start's replies were lost with its connection")
            try:
                replies = [self._connection.read_response() for _ in range(self._replies)]
            except BaseException:
                self._give_back(broken=True)
                raise
            self._give_back(broken=False)
            *_, deliveries, fallback, _ = replies
            self._start = MessageStart(deliveries=int(deliveries), fell_back=fallback is not None)
        return self._start

    def close(self) -> None:
        """Read the replies if they can be read, so the connection goes back in step."""
        if self._start is None and self._connection is not None:
            with contextlib.suppress(Exception):
                self.result()

    def _give_back(self, *, broken: bool) -> None:
        if broken:
            self._connection.disconnect()  # replies may be pending: never reuse it
        self._pool.release(self._connection)
        self._connection = None


class RedisAttempts:
    """One round trip per message: a finished message's record is deleted in the pipeline that
    starts the next one, rather than by a round trip of its own."""

    FINISHED_BUFFER = 64

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix
        self._finished: list[str] = []

    def start(self, message_id: str) -> PendingStart:
        """Count the message's start: sent now, its reply read by `PendingStart.result()`."""
        key = keys.message(self._prefix, message_id)
        commands: list[tuple[Any, ...]] = []
        if self._finished:
            commands.append(("DEL", *self._finished))
        commands += [("HINCRBY", key, "_deliveries", 1), ("HGET", key, "_fallback")]
        commands.append(("EXPIRE", key, keys.MESSAGE_TTL))
        pending = PendingStart(self._redis.connection_pool, commands)
        self._finished.clear()
        return pending

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
