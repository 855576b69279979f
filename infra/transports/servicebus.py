"""Azure Service Bus as a transport, on the `azure-servicebus` SDK: the producer and the
dead-letter sub-queue view, over the process's one client (infra/transports/servicebus_client.py).

Wire format: one message per event, the CloudEvent in JSON structured mode as the body
(content type `application/cloudevents+json`), `message_id` = the event id (so the service's
duplicate detection drops a resend), `session_id` = the event's `partitionkey` extension (the
ordering key), `subject` = the event type, and the application properties `traceparent` and
`Diagnostic-Id` (W3C Trace Context, as Azure's SDKs read it) = the event's creation context.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSubQueue
from azure.servicebus.exceptions import MessageSizeExceededError

from handlers.contracts import check_event
from handlers.envelope import Event, check_size
from handlers.registry import Registry
from infra.tracing import conventions
from infra.tracing.messaging import sending
from infra.transports.servicebus_client import ServiceBusConnection

CONTENT_TYPE = "application/cloudevents+json"
PEEK_PAGE = 100


TRACE_PROPERTIES = ("traceparent", "Diagnostic-Id")


def as_message(event: Event, body: bytes) -> ServiceBusMessage:
    return ServiceBusMessage(
        body,
        message_id=event.id,
        session_id=event.partitionkey,
        content_type=CONTENT_TYPE,
        subject=event.type,
        application_properties=(
            dict.fromkeys(TRACE_PROPERTIES, event.traceparent) if event.traceparent else None
        ),
    )


def traceparent_of(message: Any) -> str | None:
    """A received message's `traceparent` or `Diagnostic-Id` application property, if any."""
    for key, value in (getattr(message, "application_properties", None) or {}).items():
        name = key.decode() if isinstance(key, bytes) else str(key)
        if name in TRACE_PROPERTIES and value:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


class ServiceBusPublisher:
    """Sends events to a queue in as few batches as the size limit allows."""

    def __init__(
        self,
        connection: ServiceBusConnection,
        queue: str,
        *,
        registry: Registry,
        max_event_bytes: int,
    ) -> None:
        self._connection = connection
        self._queue = queue
        self._registry = registry
        self._max_event_bytes = max_event_bytes

    def publish(self, events: Sequence[Event], *, at: datetime | None = None) -> list[str]:
        """Validate every event, then send them all (scheduled for `at`, if given); returns the ids.

        Raises `InvalidEvent` (handlers/contracts.py), `UnknownEventType` or `EventTooLarge`
        before sending anything.
        """
        messages = []
        with sending(events, conventions.SERVICEBUS, lambda: self._queue) as traced:
            for event in traced:
                check_event(self._registry.route_for(event.type), event)
                messages.append(as_message(event, check_size(event, self._max_event_bytes)))
            self._send(messages, at)
        return [event.id for event in events]

    def _send(self, messages: list[ServiceBusMessage], at: datetime | None) -> None:
        with self._connection.sender(self._queue) as sender:  # kept open: one connection for all
            if at is not None:
                sender.schedule_messages(messages, at)
            else:
                batch = sender.create_message_batch()
                for message in messages:
                    try:
                        batch.add_message(message)
                    except MessageSizeExceededError:
                        sender.send_messages(batch)
                        batch = sender.create_message_batch()
                        batch.add_message(message)
                if len(batch):
                    sender.send_messages(batch)


@dataclass(frozen=True, slots=True)
class DeadLettered:
    sequence_number: int
    message_id: str
    reason: str
    description: str
    enqueued_at: datetime | None
    body: bytes
    session_id: str | None


class ServiceBusDeadLetters:
    """The queue's `$DeadLetterQueue`: browse (peek), and resubmit to the queue."""

    def __init__(self, connection: ServiceBusConnection, queue: str) -> None:
        self._connection = connection
        self._queue = queue

    def browse(self, limit: int) -> list[DeadLettered]:
        found: list[DeadLettered] = []
        with self._connection.in_use() as client, self._dlq(client) as receiver:
            next_sequence = 0
            while len(found) < limit:
                page = receiver.peek_messages(
                    min(PEEK_PAGE, limit - len(found)), sequence_number=next_sequence
                )
                if not page:
                    break
                found += [_dead_lettered(message) for message in page]
                next_sequence = (page[-1].sequence_number or 0) + 1
        return found

    def resubmit(self, sequence_numbers: set[int] | None, max_wait: float = 5.0) -> list[DeadLettered]:
        """Send letters (all, or those numbered) to the queue again, then complete them in the
        dead-letter queue. The copy gets a message id of its own, or duplicate detection would
        drop it within its window; the event id in the body stays the idempotency key."""
        done: list[DeadLettered] = []
        with (
            self._connection.in_use() as client,
            self._dlq(client, max_wait) as receiver,
            client.get_queue_sender(self._queue) as sender,
        ):
            others = []  # held locked until the end, so that the drain does not see them again
            for message in _drain(receiver):
                if sequence_numbers is not None and message.sequence_number not in sequence_numbers:
                    others.append(message)
                    continue
                letter = _dead_lettered(message)
                sender.send_messages(
                    ServiceBusMessage(
                        letter.body,
                        message_id=f"{letter.message_id}/resubmitted-{uuid.uuid4().hex[:8]}",
                        session_id=letter.session_id,
                        content_type=message.content_type,
                        subject=message.subject,
                    )
                )
                receiver.complete_message(message)
                done.append(letter)
            for message in others:
                receiver.abandon_message(message)
        return done

    def _dlq(self, client: ServiceBusClient, max_wait: float | None = None) -> Any:
        return client.get_queue_receiver(
            self._queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER, max_wait_time=max_wait
        )


def _drain(receiver: Any) -> Iterator[Any]:
    while batch := receiver.receive_messages(max_message_count=100, max_wait_time=2):
        yield from batch


def _dead_lettered(message: Any) -> DeadLettered:
    return DeadLettered(
        sequence_number=int(message.sequence_number or 0),
        message_id=str(message.message_id),
        reason=str(message.dead_letter_reason or ""),
        description=str(message.dead_letter_error_description or ""),
        enqueued_at=message.enqueued_time_utc,
        body=body_of(message),
        session_id=message.session_id,
    )


def body_of(message: Any) -> bytes:
    """A received message's body as bytes (data sections joined; a value section as text)."""
    body = message.body
    if isinstance(body, bytes | str):
        return body.encode() if isinstance(body, str) else body
    try:
        return b"".join(part if isinstance(part, bytes) else str(part).encode() for part in body)
    except TypeError:
        return str(body).encode()
