"""The web process under test, and a TCP proxy that stands between it and the broker."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
from typing import Any

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


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `stop()` drops every connection and stops listening,
    as a broker that went away would look to its clients; `start()` brings it back."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

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
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


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
