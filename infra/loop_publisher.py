"""Hands events to the broker from an event loop: the web process's publishers.

`ThreadedPublisher` runs a blocking publisher in threads of its own (RabbitMQ: kombu's AMQP
client is blocking). `RedisLoopPublisher` needs no thread.

The blocking `CeleryPublisher` would need a thread for each send, and on two cores the hop there
and back is a large share of a request that only has to put one message on a list. Here the
messages are built as Celery builds them (infra/redis_messages.py) and the loop sends them with
redis-py's asyncio client in one round trip: one LPUSH of all a queue's messages, or a pipeline
when they go to several queues. The send returns once Redis holds every message, as the
blocking one does.

Building a route's first message needs a kombu channel, and making one is blocking I/O (connect,
PING): that happens in a thread, at the first send (and the next, if it failed). Building itself
does none (the publisher declares no queues on Redis; tests/contract/test_loop_publisher.py
counts the commands).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from handlers.envelope import Event
from handlers.ports import Publisher
from infra.publisher import CeleryPublisher
from infra.redis_messages import RedisMessages

CONNECT_TIMEOUT = 2.0
COMMAND_TIMEOUT = 10.0


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
        # In the request's context: a send span of the request's is not made twice (infra/tracing/).
        context = contextvars.copy_context()
        await asyncio.get_running_loop().run_in_executor(
            self._pool, context.run, self._publisher.publish, events
        )


class RedisLoopPublisher:
    def __init__(self, publisher: CeleryPublisher, broker_url: str, timeout: float = COMMAND_TIMEOUT) -> None:
        """`timeout`: the longest a send may wait on Redis, connecting included (FLEET_PUBLISH_TIMEOUT)."""
        self._publisher = publisher
        self._timeout = timeout
        self._messages = RedisMessages(publisher)
        self._broker_url = broker_url
        self._client: redis.asyncio.Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = False

    async def publish(self, events: Sequence[Event]) -> None:
        """Send the events durably, or raise (a redis-py or kombu error: nothing acknowledged)."""
        client = self._client_for(asyncio.get_running_loop())
        if not self._connected:
            await asyncio.to_thread(self._publisher.connect, self._timeout)
            self._connected = True
        sends = self._messages.build(events)  # validates first; raises before anything is built
        by_queue: dict[str, list[str]] = {}
        for key, payload in sends:
            by_queue.setdefault(key, []).append(payload)
        # One deadline for the whole send, not redis-py's socket timeout: that one runs every
        # write in a task of its own (asyncio.wait_for), a turn of the loop per send. Cancelled
        # mid-command, redis-py drops the connection, so no reply is ever read by the wrong send.
        async with asyncio.timeout(self._timeout):
            if len(by_queue) == 1:  # the usual case: one command, no pipeline to build
                [(key, payloads)] = by_queue.items()
                await client.lpush(key, *payloads)
            elif by_queue:
                async with client.pipeline(transaction=False) as pipe:
                    for key, payloads in by_queue.items():
                        pipe.lpush(key, *payloads)
                    await pipe.execute()
        # Counted in the coordination store on a thread, not awaited: the answer waits for nothing
        # but the broker, and a lost count costs the console a rate, never an event.
        asyncio.get_running_loop().run_in_executor(None, self._publisher.count_arrivals, events)

    def _client_for(self, loop: asyncio.AbstractEventLoop) -> redis.asyncio.Redis:
        # asyncio connections belong to the loop that made them (tests run apps on several loops).
        if self._client is None or self._loop is not loop:
            self._loop = loop
            self._client = redis.asyncio.Redis.from_url(
                self._broker_url,
                socket_connect_timeout=min(CONNECT_TIMEOUT, self._timeout),
                # No silent second try: a failed send is answered 503 and the client sends again.
                retry=Retry(NoBackoff(), 0),
            )
        return self._client
