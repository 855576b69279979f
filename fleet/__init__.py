"""The fleet's producer API: one import, one call.

    import fleet
    event_id = fleet.publish("demo.deposit_recorded", {"account": "a-1", "amount": 5}, source="shop")
    ids = fleet.publish_events([fleet.new_event(...), ...])
    fleet.publish(..., to="redis-stream")   # or "servicebus": through a transport a bridge consumes

Settings come from `FLEET_*` environment variables, read on the first call.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from handlers.envelope import Event, new_event, parse_event
from handlers.errors import EventTooLarge, FleetError, InvalidEvent, UnknownEventType

__all__ = [
    "Event",
    "EventTooLarge",
    "FleetError",
    "InvalidEvent",
    "UnknownEventType",
    "new_event",
    "parse_event",
    "publish",
    "publish_events",
]

_lock = threading.Lock()
_runtime: Any = None


def _publisher(to: str) -> Any:
    global _runtime  # noqa: PLW0603 - one runtime per producer process, built on first use
    with _lock:
        if _runtime is None:
            from infra.settings import Settings
            from workers.bootstrap import Runtime

            _runtime = Runtime(Settings())
        return _runtime.fleet().publisher_for(to)


def publish(
    type: str,
    data: Any = None,
    *,
    source: str,
    id: str | None = None,
    to: str = "celery",
    **attributes: Any,
) -> str:
    """Validate and send one event; returns its id. Raises `InvalidEvent`, `UnknownEventType`.

    `to`: "celery" (the fleet's queues), "redis-stream" or "servicebus" (a bridge consumes those).
    """
    event = new_event(type, data, source=source, id=id, **attributes)
    return str(_publisher(to).publish([event])[0])


def publish_events(events: Sequence[Event], *, to: str = "celery") -> list[str]:
    """Validate all, then send all, batched per message; returns the ids in order."""
    return list(_publisher(to).publish(events))
