"""kombu's Redis transport, with one redis-py client per channel instead of one per command.

Stock kombu builds a new `redis.Redis` (and its table of about 170 response callbacks) for every
message it publishes and every acknowledgement it writes: a tenth of a publish's time, and a
share of the worker's main loop. The client is stateless over the channel's connection pool and
safe to share, so each channel keeps the first one it makes. Selected by `broker_transport` in
workers/celery_app.py; everything else is kombu's.

A queue entry that is not a kombu message (not JSON, or JSON without the envelope kombu needs)
would make kombu raise in the worker's event loop, which kills the worker and loses the entry,
already popped: `_brpop_read` hands it, raw, to the transport option `on_stray_entry` (the
worker's dead-letter queue, workers/consumer.py) and goes on consuming. Written against kombu
5.7's `_brpop_read` (tests/contract/test_kombu_redis.py).

`captured_sends()` lets a caller that talks to Redis itself (the web process's event loop, in
infra/loop_publisher.py) have Celery and kombu build each message, to the byte, and send it
with its own client: within it, this context's publishes are collected as (list, payload)
instead of pushed.
"""

from __future__ import annotations

import binascii
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from queue import Empty
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

log = logging.getLogger("fleet.transport")
STRAY_REQUEUE_PAUSE = 1.0

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


StraySink = Callable[[bytes, str, str], None]
"""Takes a stray queue entry: its raw bytes, the queue it was on, and why it is no message."""


def stray_reason(payload: Any) -> str | None:
    """Why a decoded queue entry is not a message kombu can deliver, or None when it is.

    Checks what kombu's `Message` and `QoS.append` read before any fleet code sees the message;
    what Celery reads after (headers, task name, body) is its consumer's to dead-letter.
    """
    if not isinstance(payload, dict):
        return f"not a kombu message: a JSON {type(payload).__name__}, not an object"
    properties = payload.get("properties")
    if not isinstance(properties, dict):
        return "not a kombu message: no 'properties' object"
    problem = _properties_problem(properties) or _body_problem(payload, properties.get("body_encoding"))
    return f"not a kombu message: {problem}" if problem else None


def _properties_problem(properties: dict[str, Any]) -> str | None:
    tag, info = properties.get("delivery_tag"), properties.get("delivery_info")
    if not isinstance(tag, str) or not tag:
        return "no 'properties.delivery_tag'"
    if not isinstance(info, dict) or not isinstance(info.get("routing_key"), str) or "exchange" not in info:
        return "no 'properties.delivery_info' with exchange and routing key"
    return None


def _body_problem(payload: dict[str, Any], encoding: Any) -> str | None:
    body, headers = payload.get("body"), payload.get("headers")
    if headers is not None and not isinstance(headers, dict):
        return "'headers' is not an object"
    if body is not None and not isinstance(body, str):
        return "'body' is not a string"
    if not body or encoding is None:
        return None
    if not isinstance(encoding, str) or encoding.lower() not in ("base64", "utf-8"):
        return f"unknown body encoding {encoding!r}"
    if encoding.lower() == "base64":
        try:
            binascii.a2b_base64(body)
        except (binascii.Error, ValueError) as exc:
            return f"body is not base64 ({exc})"
    return None


class Channel(kombu_redis.Channel):
    # kombu's stubs leave out its private methods, hence the ignores below.
    _shared_client: Any = None
    on_stray_entry: StraySink | None = None
    from_transport_options = (*kombu_redis.Channel.from_transport_options, "on_stray_entry")

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

    def _brpop_read(self, **options: Any) -> bool:
        # kombu 5.7's, but for the entry it cannot deliver: handed to `on_stray_entry`, not raised
        try:
            try:
                reply = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:  # type: ignore[attr-defined]
                self.client.connection.disconnect()  # the next round reconnects
                raise
            if not reply:
                raise Empty()
            key, item = reply
            queue = bytes_to_str(key).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(queue)  # type: ignore[attr-defined]
            try:
                payload = loads(bytes_to_str(item))
            except (ValueError, RecursionError) as exc:  # UnicodeDecodeError too
                self._stray(bytes(item), bytes_to_str(key), queue, f"not JSON: {exc}")
                return True
            if reason := stray_reason(payload):
                self._stray(bytes(item), bytes_to_str(key), queue, reason)
                return True
            self.connection._deliver(payload, queue)
            return True
        finally:
            self._in_poll = None
            self._flush_brpop_reauth()  # type: ignore[attr-defined]

    def _stray(self, raw: bytes, key: str, queue: str, reason: str) -> None:
        """Dead-letter an entry that is no message; if that fails, put it back at the list's tail."""
        try:
            if self.on_stray_entry is None:
                raise RuntimeError("no on_stray_entry transport option to take it")
            self.on_stray_entry(raw, queue, reason)
        except Exception:
            log.critical(
                "could not set aside a stray entry of %s (%s); putting it back", queue, reason, exc_info=True
            )
            time.sleep(STRAY_REQUEUE_PAUSE)  # do not spin on it while the store is down
            self._create_client().lpush(key, raw)  # the far end: good messages go first

    def _disconnect_pools(self) -> None:
        self._shared_client = None  # it belongs to the pool being dropped
        super()._disconnect_pools()  # type: ignore[misc]


class Transport(kombu_redis.Transport):
    Channel = Channel
