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
5.7's `_brpop_read` (tests/contract/test_kombu_redis.py). `SentinelTransport` is the same on
kombu's Sentinel channel (`sentinel://` brokers, infra/redis_clients.py).

With the transport option `consume_batch` above 1, a read takes up to that many waiting
messages of one queue in one round trip (the `_TAKE` script, never more than the QoS window has
room for) and records them all as unacked in the same atomic step, where kombu writes one
pipeline per message after its BRPOP; while the queues are empty, reads block on kombu's
BRPOP. `QoS.ack_many` removes a batch's records in one pipeline. What a read hands to kombu is
unchanged: each message delivered, held and leased alone (docs/consumption.md).

`captured_sends()` lets a caller that talks to Redis itself (the web process's event loop, in
infra/loop_publisher.py) have Celery and kombu build each message, to the byte, and send it
with its own client: within it, this context's publishes are collected as (list, payload)
instead of pushed.
"""

from __future__ import annotations

import binascii
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cached_property
from queue import Empty
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual as kombu_virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

from infra.redis_clients import RedisAccess

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


# Takes up to ARGV[2] messages from the first non-empty list of KEYS[1..n-2] and records each
# as kombu's `QoS.append` would (KEYS[n-1]: `unacked_index`, score ARGV[1]; KEYS[n]: `unacked`,
# `[message, exchange, routing key]` with the message as the list held it), in one atomic step:
# a worker killed at any moment leaves every message either on its list or leased. Returns
# {list, messages, tags}, a tag false for an entry that is no message (not recorded), or false.
_TAKE = """
local index, hash = KEYS[#KEYS - 1], KEYS[#KEYS]
for k = 1, #KEYS - 2 do
    local items = redis.call('RPOP', KEYS[k], ARGV[2])
    if items then
        local tags = {}
        for i, item in ipairs(items) do
            tags[i] = false
            local ok, m = pcall(cjson.decode, item)
            local p = ok and type(m) == 'table' and m.properties
            local info = type(p) == 'table' and p.delivery_info
            if type(info) == 'table' and type(p.delivery_tag) == 'string' and p.delivery_tag ~= ''
                    and type(info.routing_key) == 'string' and info.exchange ~= nil then
                redis.call('ZADD', index, ARGV[1], p.delivery_tag)
                local route = cjson.encode(info.exchange) .. ',' .. cjson.encode(info.routing_key)
                redis.call('HSET', hash, p.delivery_tag, '[' .. item .. ',' .. route .. ']')
                tags[i] = p.delivery_tag
            end
        end
        return {KEYS[k], items, tags}
    end
end
return false
"""


class QoS(kombu_redis.QoS):
    """kombu's, but a message the read already recorded as unacked is not written again, and a
    batch of acknowledgements is one pipeline."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recorded: set[str] = set()
        """Tags of messages the read recorded in `unacked` itself, not yet delivered."""

    def append(self, message: Any, delivery_tag: str) -> None:
        if delivery_tag in self.recorded:
            self.recorded.discard(delivery_tag)
            kombu_virtual.QoS.append(self, message, delivery_tag)  # the in-memory record only
            return
        super().append(message, delivery_tag)

    def ack(self, delivery_tag: str) -> None:
        if self._channel_gone(delivery_tag):
            return
        super().ack(delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if self._channel_gone(delivery_tag):
            return
        super().reject(delivery_tag, requeue=requeue)

    def _channel_gone(self, delivery_tag: str) -> bool:
        """A task that ends after its channel closed (the broker went away, or failed over, and
        the consumer reconnected on a new channel) cannot write to Redis through it: kombu would
        raise an error no one catches, which stops the worker. Its message stays recorded in
        `unacked`, and the sweep hands it out again a lease later (a run the ledger makes a
        no-op), so it is only forgotten here."""
        if getattr(self.channel, "connection", None) is not None:
            return False
        log.warning(
            "message %s ended after its channel closed: the sweep will hand it out again", delivery_tag
        )
        kombu_virtual.QoS.ack(self, delivery_tag)  # the in-memory record only
        return True

    def forget(self, delivery_tags: list[str]) -> None:
        """Remove the unacked records of `delivery_tags`: one ZREM and one HDEL for them all, in
        one round trip (kombu's `_remove_from_indices` is the pair for one tag)."""
        if not delivery_tags:
            return
        with self.pipe_or_acquire() as pipe:
            pipe.zrem(self.unacked_index_key, *delivery_tags).hdel(self.unacked_key, *delivery_tags)
            pipe.execute()

    def ack_many(self, delivery_tags: list[str]) -> None:
        """Acknowledge `delivery_tags` in one round trip (kombu's `ack` is one each)."""
        if not delivery_tags or any([self._channel_gone(tag) for tag in delivery_tags]):
            return
        self.forget(delivery_tags)
        for tag in delivery_tags:
            kombu_virtual.QoS.ack(self, tag)


class Channel(kombu_redis.Channel):
    # kombu's stubs leave out its private methods, hence the ignores below.
    QoS = QoS
    _shared_client: Any = None
    _read_count: int | None = None
    _taking = True
    on_stray_entry: StraySink | None = None
    consume_batch: int = 1
    min_replicas: int = 0
    replica_timeout: float = 2.0
    from_transport_options = (
        *kombu_redis.Channel.from_transport_options,
        "on_stray_entry",
        "consume_batch",
        "min_replicas",
        "replica_timeout",
    )

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:  # the event loop's client: kombu keeps its own
            return super()._create_client(asynchronous=True)  # type: ignore[misc]
        if self._shared_client is None:
            self._shared_client = super()._create_client()  # type: ignore[misc]
        return self._shared_client

    def _put(self, queue: str, message: Any, **kwargs: Any) -> None:
        sends = _captured.get()
        expiring = bool(self._expires and queue in self._expires)  # type: ignore[attr-defined]
        if sends is None and self.min_replicas > 0 and not expiring and "_publish_batch" not in kwargs:
            self._put_replicated(queue, message)
            return
        if sends is None or expiring:
            super()._put(queue, message, **kwargs)
            return
        priority = self._get_message_priority(message, reverse=False)
        sends.append((self._q_for_pri(queue, priority), dumps(message)))  # type: ignore[attr-defined]

    @cached_property
    def _replicas(self) -> RedisAccess:
        """The replica acknowledgement the transport options ask for (set once, at the channel's start)."""
        return RedisAccess(min_replicas=self.min_replicas, replica_timeout=self.replica_timeout)

    def _put_replicated(self, queue: str, message: Any) -> None:
        """kombu's LPUSH, then `WAIT` on the same connection (one pipeline): returns once
        `min_replicas` replicas hold the message, else raises `NotReplicated`."""
        key = self._q_for_pri(queue, self._get_message_priority(message, reverse=False))  # type: ignore[attr-defined]
        access = self._replicas
        with self.conn_or_acquire() as client, client.pipeline(transaction=False) as pipe:
            pipe.lpush(key, dumps(message))
            pipe.execute_command("WAIT", *(access.wait_replicas() or ()))
            replies = pipe.execute()
        access.replicated(replies[-1])

    def _brpop_start(self, timeout: float | None = None) -> None:
        # kombu 5.7's BRPOP while the queues are empty; while messages wait, the `_TAKE` script,
        # which takes up to a batch of them and records them as unacked in one atomic step
        count = self._batch_room()
        if count <= 1 or not self._taking or self.global_keyprefix:  # kombu prefixes the keys it knows
            self._read_count = None
            super()._brpop_start(timeout)  # type: ignore[misc]
            return
        queues = self._queue_cycle.consume(len(self.active_queues))  # type: ignore[attr-defined]
        if not queues:
            return
        keys = [self._q_for_pri(queue, pri) for pri in self.priority_steps for queue in queues]  # type: ignore[attr-defined]
        qos: Any = self.qos  # this module's QoS (`Channel.QoS`)
        keys += [qos.unacked_index_key, qos.unacked_key]
        self._in_poll = self.client.connection
        self._brpop_sent_at = time.monotonic()
        self._read_count = count
        self.client.connection.send_command("EVAL", _TAKE, len(keys), *keys, repr(time.time()), count)

    def _batch_room(self) -> int:
        """How many messages the next read may take: the batch, within the QoS window."""
        if self.consume_batch <= 1:
            return 1
        room = self.qos.can_consume_max_estimate()
        return self.consume_batch if room is None else max(1, min(self.consume_batch, room))

    def _brpop_read(self, **options: Any) -> bool:
        # kombu 5.7's, but for the entry it cannot deliver: handed to `on_stray_entry`, not raised;
        # and the entries `_TAKE` took (already recorded as unacked) delivered in order
        try:
            command = "BRPOP" if self._read_count is None else "EVAL"
            try:
                reply = self.client.parse_response(self.client.connection, command, **options)
            except self.connection_errors:  # type: ignore[attr-defined]
                self.client.connection.disconnect()  # the next round reconnects
                raise
            self._taking = bool(reply)  # nothing waiting: block on BRPOP until something comes
            if not reply:
                raise Empty()
            key, items, tags = reply if command == "EVAL" else (reply[0], [reply[1]], [None])
            queue = bytes_to_str(key).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(queue)  # type: ignore[attr-defined]
            qos: Any = self.qos
            recorded = [bytes_to_str(tag) for tag in tags if tag]
            qos.recorded.update(recorded)
            taken = []
            for item, tag in zip(items, tags, strict=True):
                payload = self._message_or_stray(item, key, queue)
                if payload is not None:
                    taken.append(payload)
                elif tag:  # the script took it for a message: it is set aside, not held
                    qos.recorded.discard(bytes_to_str(tag))
                    qos.forget([bytes_to_str(tag)])
            for payload in taken:
                self.connection._deliver(payload, queue)
            return True
        finally:
            self._in_poll = None
            self._read_count = None
            self._flush_brpop_reauth()  # type: ignore[attr-defined]

    def _message_or_stray(self, item: bytes, key: bytes, queue: str) -> Any:
        """The decoded message, or None when the entry was no message (and was set aside)."""
        try:
            payload = _decoded(bytes_to_str(item))
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError too
            self._stray(bytes(item), bytes_to_str(key), queue, f"not JSON: {exc}")
            return None
        if reason := stray_reason(payload):
            self._stray(bytes(item), bytes_to_str(key), queue, reason)
            return None
        return payload

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
        if getattr(self, "_closing", False) and self._qos is not None:
            # kombu restores what is unacked after dropping the pools, on a client (and a pool)
            # it then opens and never closes: restore while this channel's pool is alive
            self._restore_once(self._qos)
        self._shared_client = None  # it belongs to the pool being dropped
        super()._disconnect_pools()  # type: ignore[misc]

    @staticmethod
    def _restore_once(qos: Any) -> None:
        """kombu's `restore_unacked_once`, which must not kill the worker when Redis is gone.

        A restore that fails (the broker down, or failing over) leaves kombu's in-memory record
        marked restored but not empty, and kombu's next call (its own, when the channel closes)
        then fails an assertion that stops the worker. Those messages are still recorded in
        Redis' `unacked` (or the promoted replica's), where the sweep puts them back a lease
        later: the record in memory is dropped instead.
        """
        try:
            qos.restore_unacked_once()
        except Exception as exc:
            log.warning(
                "could not put this channel's unacknowledged messages back now (%s): a sweep will", exc
            )
        finally:
            if getattr(qos._delivered, "restored", False):
                qos._delivered.clear()


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelChannel(Channel, kombu_redis.SentinelChannel):
    """This module's channel on kombu's Sentinel channel: its pool is a `SentinelConnectionPool`,
    so every new connection (after a failover drops the old ones) goes to the master the
    sentinels name now. `_TAKE` is sent whole (`EVAL`), so a promoted replica needs no script
    loaded first."""

    from_transport_options = (
        *Channel.from_transport_options,
        *(
            o
            for o in kombu_redis.SentinelChannel.from_transport_options
            if o not in Channel.from_transport_options
        ),
    )


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


def _decoded(text: str) -> Any:
    """kombu's `loads`, without its per-object hook where no object needs it: the hook only
    turns kombu's `{"__type__": ..., "__value__": ...}` objects back into their values."""
    return loads(text) if '"__type__"' in text else json.loads(text)


def ack_messages(messages: list[Any]) -> None:
    """Acknowledge kombu messages: one pipeline per channel of this transport, else one by one."""
    channels: dict[int, tuple[Any, list[Any]]] = {}
    for message in messages:
        channels.setdefault(id(message.channel), (message.channel, []))[1].append(message)
    for channel, group in channels.values():
        qos = getattr(channel, "_qos", None)  # not `channel.qos`, which would create one
        if not isinstance(qos, QoS):
            for message in group:
                message.ack()
            continue
        qos.ack_many([message.delivery_tag for message in group])
        for message in group:
            message._state = "ACK"  # what kombu's `Message.ack` sets after `basic_ack`
