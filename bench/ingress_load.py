"""Load for the ingress benchmark: a lean HTTP/1.1 keep-alive client on asyncio streams, closed-
loop (as fast as answers come) and open-loop (a fixed rate; a request that could not be sent on
time because its connection was still busy is timed from when it was due, so a slow server cannot
hide its queue), and the bare ASGI apps the fleet is compared with: one answers 202 doing
nothing, one first LPUSHes the body as it came, one first sends the items as one message
through a stock Celery app."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from starlette.concurrency import run_in_threadpool


async def bare_app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """Reads the body and answers 202 (`uvicorn bench.ingress_load:bare_app`)."""
    if scope["type"] != "http":
        return
    await _body(receive)
    await _accepted(send)


async def _body(receive: Callable[..., Any]) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _accepted(send: Callable[..., Any]) -> None:
    await send({"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def send_app() -> Callable[..., Any]:
    """The same durable work as the fleet, with stock tools and no fleet code: read the body,
    `json.loads` it, send its items as ONE message with a plain Celery app's `send_task` (default
    settings, stock kombu Redis transport) from Starlette's thread pool, as a sync FastAPI endpoint
    would, then answer 202. `uvicorn --factory bench.ingress_load:send_app`; broker and queue from
    BENCH_SEND_BROKER_URL and BENCH_SEND_QUEUE. The items go as `kwargs["events"]`, so the runner
    counts them on the queue as it counts the fleet's."""
    celery = Celery("bench_send", broker=os.environ["BENCH_SEND_BROKER_URL"])
    queue = os.environ["BENCH_SEND_QUEUE"]

    def publish(items: list[Any]) -> None:
        celery.send_task("bench.ingress.items", kwargs={"events": items}, queue=queue)

    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        body = await _body(receive)
        if scope["method"] == "POST":  # not the runner's GET /healthz
            await run_in_threadpool(publish, request_items(body))
        await _accepted(send)

    return app


def request_items(body: bytes | str) -> list[Any]:
    """The items of a request body: a Graph collection's `value`, a batch's list, or the one event."""
    loaded = json.loads(body)
    items = loaded["value"] if isinstance(loaded, dict) and "value" in loaded else loaded
    return items if isinstance(items, list) else [items]


def lpush_app() -> Callable[..., Any]:
    """The least a durable 202 costs: read the body and LPUSH it, as it came, from the event loop
    (redis-py's asyncio client, hiredis), then answer 202; no parsing, no checks, no message
    format. `uvicorn --factory bench.ingress_load:lpush_app`; Redis and list from
    BENCH_LPUSH_REDIS_URL and BENCH_LPUSH_QUEUE."""
    import redis.asyncio

    queue = os.environ["BENCH_LPUSH_QUEUE"]
    client = redis.asyncio.Redis.from_url(os.environ["BENCH_LPUSH_REDIS_URL"])  # connects on first use

    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        body = await _body(receive)
        if scope["method"] == "POST":
            await client.lpush(queue, body)
        await _accepted(send)

    return app


def raw_request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return head.encode() + b"\r\n" + body


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    elapsed: float = 0.0


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> int:
        self.writer.write(request)
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def closed_loop(port: int, request: bytes, *, connections: int, seconds: float) -> Outcome:
    """`connections` clients, each sending the next request when the last is answered."""
    outcome = Outcome()
    pool = [await _Connection.open(port) for _ in range(connections)]
    started = time.perf_counter()
    deadline = started + seconds

    async def client(connection: _Connection) -> None:
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            status = await connection.exchange(request)
            outcome.latencies.append(time.perf_counter() - sent)
            outcome.statuses[status] += 1

    await asyncio.gather(*(client(connection) for connection in pool))
    outcome.elapsed = time.perf_counter() - started
    for connection in pool:
        connection.close()
    return outcome


async def open_loop(port: int, request: bytes, *, rate: float, seconds: float, connections: int) -> Outcome:
    """Requests due at fixed times `rate` per second; each is timed from when it was due."""
    outcome = Outcome()
    pool = [await _Connection.open(port) for _ in range(connections)]
    count = int(rate * seconds)
    next_index = 0
    started = time.perf_counter()

    async def client(connection: _Connection) -> None:
        nonlocal next_index
        while next_index < count:
            due = started + next_index / rate
            next_index += 1
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
                # asyncio wakes a sleeper a millisecond or two late (epoll's whole milliseconds):
                # the client's lateness, not the server's, and most of a bare app's p99 if counted.
                due = time.perf_counter()
            # else: this connection was still waiting for an answer when the request fell due;
            # that wait is the server's doing and is counted.
            status = await connection.exchange(request)
            outcome.latencies.append(time.perf_counter() - due)
            outcome.statuses[status] += 1

    await asyncio.gather(*(client(connection) for connection in pool))
    outcome.elapsed = time.perf_counter() - started
    for connection in pool:
        connection.close()
    return outcome
