"""An unreachable downstream that does not refuse: a TCP port that accepts connections and never
answers, until `restore()` makes it pass every new connection through to a real server.

What a firewall dropping replies, a hung load balancer or an overloaded Graph looks like to a
client: the connect succeeds, then nothing; only the client's own timeouts end the wait.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit


@contextlib.contextmanager
def black_hole() -> Iterator[int]:
    """Yields the port of a listener on loopback that accepts and never answers (a black-holed broker)."""
    hole = BlackHole().start()
    try:
        yield hole.port
    finally:
        hole.stop()


def closed_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


class BlackHole:
    def __init__(self, target_url: str | None = None) -> None:
        """`target_url`: where connections go once restored (its scheme, host and port)."""
        target = urlsplit(target_url) if target_url else None
        self._target = (target.hostname or "127.0.0.1", target.port or 80) if target else None
        self._path = target.path if target else ""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._swallowed: list[socket.socket] = []
        self._passing = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._waiting = 0
        self.most_waiting = 0
        """The most clients left waiting at once (each until it gave up and closed)."""

    @property
    def url(self) -> str:
        """The target's URL with this port in its place (plain http)."""
        return f"http://127.0.0.1:{self.port}{self._path}"

    def start(self) -> BlackHole:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def restore(self) -> None:
        """Pass new connections through; the swallowed ones are closed (their clients see a reset)."""
        self._passing.set()
        for connection in self._swallowed:
            connection.close()

    def stop(self) -> None:
        self._closed.set()
        self._listener.close()
        for connection in self._swallowed:
            connection.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            if self._passing.is_set() and self._target is not None:
                threading.Thread(target=self._pass, args=(connection,), daemon=True).start()
            else:  # held open, never answered; read only to see when the client gives up
                self._swallowed.append(connection)
                threading.Thread(target=self._swallow, args=(connection,), daemon=True).start()

    def _swallow(self, connection: socket.socket) -> None:
        with self._lock:
            self._waiting += 1
            self.most_waiting = max(self.most_waiting, self._waiting)
        try:
            while connection.recv(65536):
                pass
        except OSError:
            pass
        finally:
            with self._lock:
                self._waiting -= 1

    def _pass(self, client: socket.socket) -> None:
        assert self._target is not None
        try:
            server = socket.create_connection(self._target)
        except OSError:
            client.close()
            return
        back = threading.Thread(target=_pipe, args=(server, client), daemon=True)
        back.start()
        _pipe(client, server)
        back.join()
        client.close()
        server.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
