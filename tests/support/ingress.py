"""The web process under test, and a TCP proxy that stands between it and the broker (and can
lose the broker in the middle of a send)."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.support.processes import FleetProcess, free_port, wait_until


def start_web(fleet: Any, env: dict[str, str] | None = None) -> tuple[FleetProcess, str]:
    """`fleet web` on a free port, answering /healthz; returns the process and its base URL."""
    port = free_port()
    process = fleet.start("web", env={"FLEET_WEB_PORT": str(port), **(env or {})})
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if not process.alive():
            raise AssertionError(f"fleet web exited:\n{process.log()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        return False

    wait_until(healthy, timeout=60, what="fleet web to answer /healthz")
    return process, base


# How redis-py sends an LPUSH: a RESP array (`*<n>\r\n`, n = 2 + the number of messages) of bulk
# strings, the command first.
LPUSH = b"\r\n$5\r\nLPUSH\r\n"
_ARRAY_HEADER = 12  # `*` and the element count: enough for any array an LPUSH could be


class _LpushCounter:
    """Counts LPUSH commands in a client's byte stream (chunked anyhow) up to the one to cut at."""

    def __init__(self, lpushes: int) -> None:
        self.left = lpushes
        self._tail = b""  # a command split across chunks is still seen once

    def feed(self, chunk: bytes) -> int | None:
        """Where in `chunk` the cut falls (forward the bytes before it), or None: forward it all."""
        seen = self._tail + chunk
        start = max(0, len(self._tail) - len(LPUSH) + 1)  # a match wholly in the tail was counted
        while (found := seen.find(LPUSH, start)) >= 0:
            self.left -= 1
            if self.left == 0:  # cut where the command's array begins
                return max(0, seen.rfind(b"*", 0, found) - len(self._tail))
            start = found + 1
        self._tail = seen[-(len(LPUSH) + _ARRAY_HEADER) :]
        return None


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `stop()` drops every connection and stops listening,
    as a broker that went away would look to its clients; `start()` brings it back.
    `stop_at_lpush(n)` lets n - 1 Redis LPUSHes through and stops as the n-th arrives, unsent:
    a broker lost in the middle of a send of several messages."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._counter: _LpushCounter | None = None

    @classmethod
    def before(cls, url: str) -> tuple[TcpProxy, str]:
        """A proxy (started) in front of the server of `url`, and `url` pointing through it."""
        parts = urlsplit(url)
        proxy = cls(parts.hostname or "127.0.0.1", parts.port or 0)
        proxy.start()
        return proxy, parts._replace(netloc=parts.netloc.replace(f":{parts.port}", f":{proxy.port}")).geturl()

    def stop_at_lpush(self, n: int) -> None:
        with self._lock:
            self._counter = _LpushCounter(n)

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self._connections.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._connections += [client, upstream]
            for source, sink, outbound in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pipe, args=(source, sink, outbound), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, outbound: bool) -> None:
        try:
            while chunk := source.recv(65536):
                cut = self._cut_in(chunk) if outbound else None
                sink.sendall(chunk if cut is None else chunk[:cut])
                if cut is not None:
                    self.stop()
                    return
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def _cut_in(self, chunk: bytes) -> int | None:
        with self._lock:  # several connections may send at once; the n-th LPUSH of all of them
            if self._counter is None:
                return None
            cut = self._counter.feed(chunk)
            if cut is not None:
                self._counter = None  # once: after start() everything flows again
            return cut


def queued_events(client: Any, queue: str) -> list[dict[str, Any]]:
    """The events waiting in a Redis-broker queue, oldest first, without taking them."""
    events: list[dict[str, Any]] = []
    for raw in reversed(client.lrange(queue, 0, -1)):  # kombu LPUSHes; workers take from the right
        message = json.loads(raw)
        body = (
            base64.b64decode(message["body"])
            if message["properties"].get("body_encoding") == "base64"
            else message["body"]
        )
        _, kwargs, _ = json.loads(body)
        events += [json.loads(event) if isinstance(event, str) else event for event in kwargs["events"]]
    return events
