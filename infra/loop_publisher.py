"""Hands events to the broker from an event loop: the web process's publishers.

`ThreadedPublisher` runs a blocking publisher in threads of its own (RabbitMQ: kombu's AMQP
client is blocking). `RedisLoopPublisher` needs no thread.

The blocking `CeleryPublisher` would need a thread for each send, and on two cores the hop there
and back is a large share of a request that only has to put one message on a list. Here Celery
and kombu still build every message, to the byte (`captured_sends` in infra/redis_transport.py
collects what kombu would LPUSH), and the loop sends them with redis-py's asyncio client in one
pipelined round trip. The send returns once Redis holds every message, as the blocking one does.

Building needs a kombu channel, and making one is blocking I/O (connect, PING): that happens
in a thread, at the first send (and the next, if it failed). Building itself does none (the
publisher declares no queues on Redis; tests/contract/test_loop_publisher.py counts the commands).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from handlers.envelope import Event
from infra.publisher import CeleryPublisher
from infra.redis_transport import captured_sends

CONNECT_TIMEOUT = 2.0
COMMAND_TIMEOUT = 10.0


class Publisher(Protocol):
    def publish(self, events: Sequence[Event]) -> list[str]: ...


class ThreadedPublisher:
    """A blocking publisher, run in `threads` threads of its own (made at the first send, so in
    the serving process, after any fork)."""

    def __init__(self, publisher: Publisher, threads: int = 2) -> None:
        self._publisher = publisher
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None

    async def publish(self, events: Sequence[Event]) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="fleet-publish")
        await asyncio.get_running_loop().run_in_executor(self._pool, self._publisher.publish, events)


class RedisLoopPublisher:
    def __init__(self, publisher: CeleryPublisher, broker_url: str) -> None:
        self._publisher = publisher
        self._broker_url = broker_url
        self._client: redis.asyncio.Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = False

    async def publish(self, events: Sequence[Event]) -> None:
        """Send the events durably, or raise (a redis-py or kombu error: nothing acknowledged)."""
        client = self._client_for(asyncio.get_running_loop())
        if not self._connected:
            await asyncio.to_thread(self._publisher.connect)
            self._connected = True
        with captured_sends() as sends:
            self._publisher.publish(events)  # validates first; raises before anything is built
        if events and not sends:
            raise RuntimeError("the broker transport sent the messages itself: not a Redis broker?")
        async with client.pipeline(transaction=False) as pipe:
            for key, payload in sends:
                pipe.lpush(key, payload)
            await pipe.execute()

    def _client_for(self, loop: asyncio.AbstractEventLoop) -> redis.asyncio.Redis:
        # asyncio connections belong to the loop that made them (tests run apps on several loops).
        if self._client is None or self._loop is not loop:
            self._loop = loop
            self._client = redis.asyncio.Redis.from_url(
                self._broker_url,
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=COMMAND_TIMEOUT,
                # No silent second try: a failed send is answered 503 and the client sends again.
                retry=Retry(NoBackoff(), 0),
            )
        return self._client
