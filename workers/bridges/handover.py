"""What every bridge does with a received body: check it, then hand the good ones to the fleet's
queues, and say why each bad one is poison.

A body is poison when it is not a valid CloudEvent (bad JSON, a broken envelope, over the size
limit), no route handles its type, or its data breaks the route's model (handlers/contracts.py):
trying again cannot help, so it is dead-lettered at once.
The hand-over sends the event text as received (already validated), many events to a broker
message, and returns only once the broker has it (RabbitMQ publisher confirms; a Redis LPUSH
has returned), which is when a bridge may acknowledge its transport.
"""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.records import DeadLetter, fingerprint
from handlers.contracts import check_event
from handlers.envelope import parse_event
from handlers.errors import InvalidEvent, PermanentError
from handlers.registry import Registry, Route
from handlers.trace_context import parse
from infra.dead_letters import readable_body
from infra.publisher import MAX_MESSAGE_BYTES, CeleryPublisher


@dataclass(frozen=True, slots=True)
class Checked:
    """A valid event: its route and its JSON text, as received."""

    route: Route
    text: str
    key: tuple[str, str]
    """(source, id): the idempotency key"""


class HandOver:
    def __init__(
        self,
        registry: Registry,
        publisher: CeleryPublisher,
        *,
        max_event_bytes: int,
        batch_size: int,
    ) -> None:
        self._registry = registry
        self._publisher = publisher
        self._max_event_bytes = max_event_bytes
        self._batch_size = batch_size

    def check(self, body: bytes | None, traceparent: str | None = None) -> Checked | PermanentError:
        """The body as a routable event, or the reason it is poison. `traceparent`: the creation
        context the transport carried beside the body, given to an event that has none."""
        if body is None:
            return InvalidEvent("", "the message carries no event")
        try:
            event = parse_event(body, max_bytes=self._max_event_bytes)
            route = self._registry.route_for(event.type)
            check_event(route, event)
        except PermanentError as exc:
            return exc
        if traceparent and not event.traceparent and parse(traceparent) is not None:
            text = event.model_copy(update={"traceparent": traceparent}).to_json().decode()
            return Checked(route=route, text=text, key=event.key)
        return Checked(route=route, text=body.decode(), key=event.key)

    def send(self, events: Sequence[Checked]) -> None:
        """Hand events to the fleet's queues: one broker message per route and batch."""
        grouped: dict[str, list[Checked]] = defaultdict(list)
        for event in events:
            grouped[event.route.task].append(event)
        for items in grouped.values():
            chunk: list[str] = []
            size = 0
            for item in items:
                if chunk and (len(chunk) >= self._batch_size or size + len(item.text) > MAX_MESSAGE_BYTES):
                    self._publisher.send(items[0].route, chunk)
                    chunk, size = [], 0
                chunk.append(item.text)
                size += len(item.text)
            self._publisher.send(items[0].route, chunk)


def poison_letter(bridge: str, where: str, ref: str, body: bytes | None, exc: PermanentError) -> DeadLetter:
    """A dead letter for the fleet's DLQ, with what can be read of the body's identity; `ref` (the
    transport's own id of the message) stands in for an unreadable event id."""
    text = readable_body(body or b"")
    readable: Any = None
    with contextlib.suppress(ValueError):
        readable = json.loads(text)
    fields: dict[str, Any] = readable if isinstance(readable, dict) else {}

    def field(name: str, default: str, limit: int) -> str:
        value = fields.get(name)
        return value[:limit] if isinstance(value, str) and value else default

    reason = f"{type(exc).__name__}:{exc.field}" if isinstance(exc, InvalidEvent) else type(exc).__name__
    return DeadLetter(
        handler=f"bridge.{bridge}",
        event_type=field("type", "?", 256),
        source=field("source", f"fleet:{bridge}", 1024),
        event_id=field("id", ref, 1024),
        queue=where,
        envelope=text,
        attempts=1,
        error_type=type(exc).__name__,
        error_message=str(exc),
        traceback="",
        fingerprint=fingerprint(f"{reason}@bridge.{bridge}", None),
    )
