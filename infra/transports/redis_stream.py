"""A Redis stream as a transport: the producer (`XADD ... MAXLEN ~`) and the consumer group the
stream bridge reads with (`XREADGROUP`, `XAUTOCLAIM`, `XACK`).

Wire format, for producers in any language: one stream entry per event, its field `event`
holding the CloudEvent in JSON structured mode (UTF-8), and its field `traceparent` (optional,
W3C Trace Context) the event's creation context when the event carries none itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from handlers.contracts import check_event
from handlers.envelope import Event, check_size
from handlers.registry import Registry
from infra.tracing import conventions
from infra.tracing.messaging import sending

log = logging.getLogger("fleet.redis_stream")
EVENT_FIELD = b"event"
TRACEPARENT_FIELD = b"traceparent"
_PIPELINE_CHUNK = 1000


class RedisStreamProducer:
    """Appends events to a stream, whose length Redis keeps near `maxlen` (oldest entries go)."""

    def __init__(
        self, client: redis.Redis, stream: str, *, registry: Registry, max_event_bytes: int, maxlen: int
    ) -> None:
        self._client = client
        self._stream = stream
        self._registry = registry
        self._max_event_bytes = max_event_bytes
        self._maxlen = maxlen

    def publish(self, events: Sequence[Event]) -> list[str]:
        """Validate every event (route known, size), then append them all; returns their ids.

        Raises `InvalidEvent` (handlers/contracts.py), `UnknownEventType` or `EventTooLarge`
        before appending anything.
        """
        with sending(events, conventions.REDIS, lambda: self._stream) as traced:
            entries = []
            for event in traced:
                check_event(self._registry.route_for(event.type), event)
                entry = {EVENT_FIELD: check_size(event, self._max_event_bytes)}
                if event.traceparent:
                    entry[TRACEPARENT_FIELD] = event.traceparent.encode()
                entries.append(entry)
            for start in range(0, len(entries), _PIPELINE_CHUNK):
                with self._client.pipeline(transaction=False) as pipe:
                    for fields in entries[start : start + _PIPELINE_CHUNK]:
                        pipe.xadd(self._stream, fields, maxlen=self._maxlen, approximate=True)  # type: ignore[arg-type]
                    pipe.execute()
        return [event.id for event in events]


@dataclass(frozen=True, slots=True)
class StreamEntry:
    entry_id: bytes
    body: bytes | None
    """The `event` field; None when the entry has none."""
    traceparent: str | None = None
    """The `traceparent` field: the creation context of an event that carries none."""


class RedisStreamGroup:
    """One consumer of a consumer group. Entries stay pending (in the group's PEL) until `ack`;
    entries another consumer left pending longer than `claim_idle_ms` are taken over by `claim`."""

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        group: str,
        consumer: str,
        *,
        claim_idle_ms: int,
        count: int,
        block_ms: int = 1000,
    ) -> None:
        self.stream = stream
        self._client = client
        self._group = group
        self._consumer = consumer
        self._claim_idle_ms = claim_idle_ms
        self._count = count
        self._block_ms = block_ms
        self._cursor: bytes | str = "0-0"

    def ensure(self) -> None:
        """Create the group (and the stream) if missing, from the stream's start: entries added
        before the first bridge ever ran are consumed too."""
        try:
            self._client.xgroup_create(self.stream, self._group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self) -> list[StreamEntry]:
        """New entries for this consumer, waiting up to `block_ms` for some."""
        reply: Any = self._client.xreadgroup(
            self._group, self._consumer, {self.stream: ">"}, count=self._count, block=self._block_ms
        )
        if not reply:
            return []
        return [_entry(entry_id, fields) for entry_id, fields in reply[0][1]]

    def claim(self) -> tuple[list[StreamEntry], bool]:
        """Take over entries idle past the threshold (a dead consumer's, or this one's own after a
        failed hand-over); returns them and whether the scan of the pending list is complete."""
        reply: Any = self._client.xautoclaim(
            self.stream,
            self._group,
            self._consumer,
            min_idle_time=self._claim_idle_ms,
            start_id=self._cursor,
            count=self._count,
        )
        self._cursor = reply[0]
        if len(reply) > 2 and reply[2]:  # trimmed by MAXLEN while pending: Redis dropped them
            log.error(
                "%d pending entries of %s were trimmed before hand-over (raise the stream's MAXLEN): %s",
                len(reply[2]),
                self.stream,
                [_text(entry_id) for entry_id in reply[2][:10]],
            )
        done = self._cursor in (b"0-0", "0-0")
        return [_entry(entry_id, fields) for entry_id, fields in reply[1] if fields is not None], done

    def ack(self, entry_ids: Sequence[bytes]) -> None:
        if entry_ids:
            self._client.xack(self.stream, self._group, *entry_ids)

    def forget_idle_consumers(self, idle_ms: int) -> list[str]:
        """Remove consumers (dead bridges) that hold nothing and were idle past `idle_ms`."""
        gone = []
        for consumer in self._client.xinfo_consumers(self.stream, self._group):
            name = _text(consumer["name"])
            if name != self._consumer and consumer["pending"] == 0 and consumer["idle"] > idle_ms:
                self._client.xgroup_delconsumer(self.stream, self._group, name)
                gone.append(name)
        return gone


def _entry(entry_id: bytes, fields: dict[bytes, bytes]) -> StreamEntry:
    traceparent = fields.get(TRACEPARENT_FIELD)
    return StreamEntry(
        entry_id=entry_id,
        body=fields.get(EVENT_FIELD),
        traceparent=_text(traceparent) if traceparent else None,
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
