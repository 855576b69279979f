"""Transports other systems publish on: Azure Service Bus and Redis streams (producers and the
consumer-side adapters the bridges in workers/bridges/ drive)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from handlers.envelope import Event

PUBLISH_TARGETS = ("celery", "redis-stream", "servicebus")
"""Where `fleet publish --to` and `fleet.publish(..., to=)` can send events."""


class EventPublisher(Protocol):
    def publish(self, events: Sequence[Event]) -> list[str]:
        """Validate all, then send all; returns the ids in order."""
        ...
