"""kombu's Redis transport, with one redis-py client per channel instead of one per command.

Stock kombu builds a new `redis.Redis` (and its table of about 170 response callbacks) for every
message it publishes and every acknowledgement it writes: a tenth of a publish's time, and a
share of the worker's main loop. The client is stateless over the channel's connection pool and
safe to share, so each channel keeps the first one it makes. Selected by `broker_transport` in
workers/celery_app.py; everything else is kombu's.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    # kombu's stubs leave out its private methods, hence the ignores below.
    _shared_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:  # the event loop's client: kombu keeps its own
            return super()._create_client(asynchronous=True)  # type: ignore[misc]
        if self._shared_client is None:
            self._shared_client = super()._create_client()  # type: ignore[misc]
        return self._shared_client

    def _disconnect_pools(self) -> None:
        self._shared_client = None  # it belongs to the pool being dropped
        super()._disconnect_pools()  # type: ignore[misc]


class Transport(kombu_redis.Transport):
    Channel = Channel
