"""The Service Bus queue as the console's queues page shows it: messages in the queue and in its
dead-letter sub-queue, counted by peeking (Listen rights suffice, the emulator and the test
stand-in answer it), page by page up to a cap, so a deep queue costs a bounded time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azure.servicebus import ServiceBusSubQueue
from azure.servicebus.exceptions import ServiceBusError

from infra.transports.servicebus_client import ServiceBusConnection

COUNT_CAP = 5_000
"""Stop counting here: the page says "at least" rather than peeking a deep queue for minutes."""
_PAGE = 250


class QueueUnreadable(Exception):
    """The namespace could not be reached, or refused the peek."""


@dataclass(frozen=True, slots=True)
class QueueCounts:
    name: str
    active: int | None
    """Messages in the queue (locked ones too); None for a sessions queue, which only a session
    receiver may peek."""
    dead_lettered: int
    cap: int

    def shown(self, count: int | None) -> str:
        if count is None:
            return "—"
        return f"≥ {count}" if count >= self.cap else str(count)


def peek_counts(
    connection: ServiceBusConnection, queue: str, *, sessions: bool, cap: int = COUNT_CAP
) -> QueueCounts:
    try:
        with connection.in_use() as client:
            dead = _count(client.get_queue_receiver(queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER), cap)
            active = None if sessions else _count(client.get_queue_receiver(queue), cap)
    except ServiceBusError as exc:
        raise QueueUnreadable(str(exc)) from exc
    return QueueCounts(name=queue, active=active, dead_lettered=dead, cap=cap)


def _count(receiver: Any, cap: int) -> int:
    """Distinct messages seen, paging by sequence number until a page brings nothing new (which
    also ends the walk where a dead-lettered message carries its original, lower number)."""
    seen: set[int] = set()
    next_sequence = 0
    with receiver:
        while len(seen) < cap:
            page = receiver.peek_messages(min(_PAGE, cap - len(seen)), sequence_number=next_sequence)
            numbers = {int(message.sequence_number or 0) for message in page}
            if not numbers - seen:
                break
            seen |= numbers
            next_sequence = max(next_sequence, max(numbers) + 1)
    return min(len(seen), cap)
