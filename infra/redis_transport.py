"""kombu's Redis transport, with one redis-py client per channel instead of one per command.

Stock kombu builds a new `redis.Redis` (and its table of about 170 response callbacks) for every
message it publishes and every acknowledgement it writes: a tenth of a publish's time, and a
share of the worker's main loop. The client is stateless over the channel's connection pool and
safe to share, so each channel keeps the first one it makes. Selected by `broker_transport` in
workers/celery_app.py; everything else is kombu's.

`captured_sends()` lets a caller that talks to Redis itself (the web process's event loop, in
infra/loop_publisher.py) have Celery and kombu build each message, to the byte, and send it
with its own client: within it, this context's publishes are collected as (list, payload)
instead of pushed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.utils.json import dumps

Send = tuple[str, str]
"""One message as kombu would LPUSH it: the Redis list's key, and the payload."""

_captured: ContextVar[list[Send] | None] = ContextVar("fleet_captured_sends", default=None)


@contextmanager
def captured_sends() -> Iterator[list[Send]]:
    """Within it, this context's publishes go to the list it yields, not to Redis."""
    sends: list[Send] = []
    token = _captured.set(sends)
    try:
        yield sends
    finally:
        _captured.reset(token)


class Channel(kombu_redis.Channel):
    # kombu's stubs leave out its private methods, hence the ignores below.
    _shared_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:  # the event loop's client: kombu keeps its own
            return super()._create_client(asynchronous=True)  # type: ignore[misc]
        if self._shared_client is None:
            self._shared_client = super()._create_client()  # type: ignore[misc]
        return self._shared_client

    def _put(self, queue: str, message: Any, **kwargs: Any) -> None:
        sends = _captured.get()
        if sends is None or (self._expires and queue in self._expires):  # type: ignore[attr-defined]
            super()._put(queue, message, **kwargs)
            return
        priority = self._get_message_priority(message, reverse=False)
        sends.append((self._q_for_pri(queue, priority), dumps(message)))  # type: ignore[attr-defined]

    def _disconnect_pools(self) -> None:
        self._shared_client = None  # it belongs to the pool being dropped
        super()._disconnect_pools()  # type: ignore[misc]


class Transport(kombu_redis.Transport):
    Channel = Channel
