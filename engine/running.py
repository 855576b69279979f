"""Which event the current code runs for, and at which attempt: what a log line names
(infra/logs.py). Set by the dispatcher around each event's run, and by the effects around each
handler call of a batch."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple

from handlers.envelope import Event


class Running(NamedTuple):
    event_id: str
    event_type: str
    attempt: int


current: ContextVar[Running | None] = ContextVar("fleet_running_event", default=None)


@contextmanager
def running(event: Event, attempt: int) -> Iterator[None]:
    token = current.set(Running(event.id, event.type, attempt))
    try:
        yield
    finally:
        current.reset(token)
