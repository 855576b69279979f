"""A lossy TCP proxy between the worker hosts and PostgreSQL: while `faulty`, each chunk waits
`delay` seconds before it is passed on, and each connection is cut (both sides reset) with
probability `drop_per_second` per second it lives. The kernel here has no netem qdisc, so delay
and loss are done in userspace; `tc tbf` on the links does the bandwidth."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from dataclasses import dataclass, field


@dataclass
class LossyProxy:
    listen: tuple[str, int]
    target: tuple[str, int]
    delay: float = 0.0
    drop_per_second: float = 0.0
    faulty: bool = False
    cut: int = 0
    connections: int = 0
    _server: asyncio.Server | None = None
    _open: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, *self.listen)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._open):
                _reset(writer)
            await self._server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(client_writer)
            return
        self._open |= {client_writer, server_writer}
        pumps = [
            asyncio.create_task(self._pump(client_reader, server_writer)),
            asyncio.create_task(self._pump(server_reader, client_writer)),
            asyncio.create_task(self._cutter()),
        ]
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        for writer in (client_writer, server_writer):
            _reset(writer)
            self._open.discard(writer)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            if self.faulty and self.delay:
                await asyncio.sleep(self.delay)
            writer.write(chunk)
            await writer.drain()

    async def _cutter(self) -> None:
        """Ends the connection (which resets both sides) at a random moment while faulty."""
        while True:
            await asyncio.sleep(0.1)
            if self.faulty and random.random() < self.drop_per_second * 0.1:
                self.cut += 1
                return


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST, as a dropped link or a crashed middlebox does, not with a polite FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.close()
