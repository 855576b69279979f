"""Hands events to the broker as Celery messages, many events to a message.

Events are validated (route known, size within the limit) before anything is sent, grouped by
route, and sent in messages of at most `batch_size` events and about a megabyte each; a worker
takes each message's events in one database transaction. Message body:
`{"events": ["<CloudEvent JSON text>", ...], "attempt": <attempts already spent>}`: each event is
serialised once, here, and parsed once, by the worker, without the broker codec walking into it
(the dispatcher accepts events as JSON objects too, from producers that send those).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

from celery import Celery

from handlers.envelope import Event, check_size
from handlers.errors import UnknownEventType
from handlers.registry import Registry, Route
from infra.arrivals import Arrivals
from infra.tracing import conventions
from infra.tracing.messaging import sending

MAX_MESSAGE_BYTES = 1024 * 1024
MAX_NAMED = 50
"""A send span names its queue when the first events (this many) all go to one."""


class EncodedEvent(NamedTuple):
    """One validated event: its route, id, JSON text and that text's size in bytes."""

    route: Route
    id: str
    text: str
    size: int


class CeleryPublisher:
    def __init__(
        self,
        app: Celery,
        registry: Registry,
        *,
        max_event_bytes: int,
        batch_size: int,
        queue_prefix: str = "",
        declare_queues: bool = True,
        arrivals: Arrivals | None = None,
        stamp_due_time: bool = False,
    ) -> None:
        """`declare_queues=False` (Redis): a send does not declare its queue first. Celery would,
        on every send; on RabbitMQ that makes sure the queue exists before a message is routed to
        it, on Redis (the default exchange: a list per queue) it changes nothing and is a quarter
        of a send's time. `stamp_due_time` (RabbitMQ): each message's AMQP `timestamp` property is
        its due time, which RabbitMQ's management API shows as its queue's head message age."""
        self._app = app
        self._declare: list[Any] | None = None if declare_queues else []  # None: Celery's default
        self._queue_prefix = queue_prefix
        self._registry = registry
        self._max_event_bytes = max_event_bytes
        self._batch_size = batch_size
        self._arrivals = arrivals
        self._stamp_due_time = stamp_due_time
        broker = str(app.conf.broker_url or "")
        self.system = conventions.REDIS if broker.startswith("redis") else conventions.RABBITMQ

    def sending(self, events: Sequence[Event]) -> AbstractContextManager[Sequence[Event]]:
        """The `send` span of a publish of `events` (infra/tracing/messaging.py): yields them,
        those without a creation context given the span's."""
        return sending(events, self.system, lambda: self._destination(events))

    def _destination(self, events: Sequence[Event]) -> str | None:
        queues = set()
        for event in events[:MAX_NAMED]:
            try:
                queues.add(self._registry.route_for(event.type).queue)
            except UnknownEventType:  # refused by `encode`, inside the span
                return None
        return self._queue_prefix + queues.pop() if len(queues) == 1 else None

    def connect(self, timeout: float = 2.0) -> None:
        """Open the pooled broker connection and channel that sends use (blocking); one try."""
        with self._app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=1, timeout=timeout)
            producer.connection.default_channel  # noqa: B018 (makes the channel)

    def publish(self, events: Sequence[Event]) -> list[str]:
        """Validate every event, then send them all; returns their ids in order.

        Raises `UnknownEventType` or `EventTooLarge` before sending anything.
        """
        with self.sending(events) as traced:
            messages = self.messages(traced)
            with self._app.producer_or_acquire() as producer:
                for route, chunk in messages:
                    self.send(route, chunk, producer=producer)
        self.count_arrivals(events)
        return [event.id for event in events]

    def count_arrivals(self, events: Sequence[Event]) -> None:
        """Count published events per queue for the console (infra/arrivals.py), once sent."""
        if self._arrivals is None or not events:
            return
        self._count([self._registry.route_for(event.type) for event in events])

    def count_sent(self, encoded: Sequence[EncodedEvent]) -> None:
        """`count_arrivals` for events sent as encoded by `encode`."""
        if self._arrivals is not None and encoded:
            self._count([event.route for event in encoded])

    def _count(self, routes: list[Route]) -> None:
        assert self._arrivals is not None
        by_queue: dict[str, int] = defaultdict(int)
        for route in routes:
            by_queue[self._queue_prefix + route.queue] += 1
        self._arrivals.count(by_queue)

    def messages(self, events: Sequence[Event]) -> list[tuple[Route, list[str]]]:
        """The messages `publish` sends: each a route and the JSON texts of its events.

        Raises `UnknownEventType` or `EventTooLarge` for the first event that cannot be sent.
        """
        return [(route, [event.text for event in chunk]) for route, chunk in self.group(self.encode(events))]

    def encode(self, events: Sequence[Event]) -> list[EncodedEvent]:
        """Each event validated and serialised; raises `UnknownEventType` or `EventTooLarge` for
        the first event that cannot be sent."""
        encoded: list[EncodedEvent] = []
        for event in events:
            route = self._registry.route_for(event.type)
            body = check_size(event, self._max_event_bytes)
            encoded.append(EncodedEvent(route, event.id, body.decode(), len(body)))
        return encoded

    def group(self, encoded: Sequence[EncodedEvent]) -> list[tuple[Route, list[EncodedEvent]]]:
        """Encoded events as messages: grouped by route, at most `batch_size` events and about a
        megabyte each, routes in the order of their first event."""
        grouped: dict[str, list[EncodedEvent]] = defaultdict(list)
        for event in encoded:
            grouped[event.route.task].append(event)
        return [(items[0].route, chunk) for items in grouped.values() for chunk in self._chunks(items)]

    def send(
        self,
        route: Route,
        events: Sequence[str | dict[str, Any]],
        *,
        attempt: int = 0,
        countdown: float | None = None,
        producer: Any = None,
    ) -> None:
        """Send already-validated events as one message (retries, relays and replays use this)."""
        due = time.time() + (countdown or 0.0)
        stamp: dict[str, Any] = {"timestamp": int(due)} if self._stamp_due_time else {}
        self._app.send_task(
            route.task,
            kwargs={"events": list(events), "attempt": attempt},
            queue=self._queue_prefix + route.queue,
            countdown=countdown if countdown else None,
            producer=producer,
            declare=self._declare,
            headers={"fleet_due": due},  # for the queue-wait metric
            # What Flower and `celery inspect` show instead of the events' text: Celery would
            # otherwise build a repr of every message's whole body (a tenth of a send's time).
            argsrepr="()",
            kwargsrepr=kwargs_repr(len(events), attempt),
            **stamp,
        )

    def _chunks(self, items: list[EncodedEvent]) -> Iterator[list[EncodedEvent]]:
        chunk: list[EncodedEvent] = []
        size = 0
        for event in items:
            if chunk and (len(chunk) >= self._batch_size or size + event.size > MAX_MESSAGE_BYTES):
                yield chunk
                chunk, size = [], 0
            chunk.append(event)
            size += event.size
        if chunk:
            yield chunk


def kwargs_repr(events: int, attempt: int) -> str:
    """How a message's arguments are shown (Flower, `celery inspect`): counted, not printed."""
    return f"{{'events': <{events}>, 'attempt': {attempt}}}"
