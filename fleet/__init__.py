"""The fleet's producer API: one import, one call.

    import fleet
    event_id = fleet.publish("demo.deposit_recorded", {"account": "a-1", "amount": 5}, source="shop")
    event_id = fleet.publish(DepositRecorded(account="a-1", amount=5), source="shop")  # typed
    ids = fleet.publish_events([fleet.new_event(...), ...])
    event_id = await fleet.publish_async("demo.deposit_recorded", {...}, source="shop")
    fleet.publish(..., to="redis-stream")   # or "servicebus": through a transport a bridge consumes

Settings come from `FLEET_*` environment variables, read on the first call; concurrent calls
share broker round trips (docs/publishing.md). An event's data is checked against its type's
model (docs/event-contracts.md), and `dataschema` names that model's schema and version.
Errors: `InvalidEvent` (naming the field, e.g. `data.amount`), `UnknownEventType`,
`EventTooLarge` before anything is sent; `BrokerUnavailable` (a `PublishFailed`) after
FLEET_PUBLISH_TIMEOUT at most when the broker does not take the events.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, overload

from handlers.contracts import EventData, schema_uri
from handlers.envelope import Event, new_event, parse_event
from handlers.errors import (
    BrokerUnavailable,
    EventTooLarge,
    FleetError,
    InvalidEvent,
    PublishFailed,
    UnknownEventType,
)
from infra.publish_targets import PublishTargets

__all__ = [
    "BrokerUnavailable",
    "Event",
    "EventData",
    "EventTooLarge",
    "FleetError",
    "InvalidEvent",
    "PublishFailed",
    "UnknownEventType",
    "close",
    "new_event",
    "parse_event",
    "publish",
    "publish_async",
    "publish_events",
]

ASYNC_THREADS = 8
"""Threads that carry `publish_async` calls; their sends are grouped (infra/group_commit.py)."""

_lock = threading.Lock()
_targets: PublishTargets | None = None
_pool: ThreadPoolExecutor | None = None
_pool_pid = [0]


def _publish_targets() -> PublishTargets:
    global _targets  # noqa: PLW0603 - one set of publishers per producer process, built on first use
    targets = _targets
    if targets is not None:
        return targets
    with _lock:
        if _targets is None:
            from infra.settings import Settings

            _targets = PublishTargets(Settings())
        return _targets


def _publisher(to: str) -> Any:
    return _publish_targets().publisher_for(to)


def _event(
    type_or_data: str | EventData, data: Any, *, source: str, id: str | None, **attributes: Any
) -> Event:
    """The event to publish; a model names its own type, and `dataschema` names the type's schema."""
    if isinstance(type_or_data, EventData):
        if data is not None:
            raise TypeError("publish a model alone: its fields are the data")
        event_type = type_or_data.event_type
        data = type_or_data.model_dump(mode="json", exclude_none=True)
    else:
        event_type = type_or_data
    if "dataschema" not in attributes:
        with contextlib.suppress(UnknownEventType):  # raised by the publisher, before sending
            uri = schema_uri(_publish_targets().registry.route_for(event_type))
            if uri is not None:
                attributes["dataschema"] = uri
    return new_event(event_type, data, source=source, id=id, **attributes)


@overload
def publish(
    type: EventData, /, *, source: str, id: str | None = None, to: str = "celery", **attributes: Any
) -> str: ...


@overload
def publish(
    type: str,
    data: Any = None,
    /,
    *,
    source: str,
    id: str | None = None,
    to: str = "celery",
    **attributes: Any,
) -> str: ...


def publish(
    type: str | EventData,
    data: Any = None,
    /,
    *,
    source: str,
    id: str | None = None,
    to: str = "celery",
    **attributes: Any,
) -> str:
    """Validate and send one event; returns its id once the broker holds it.

    `type` is the event type with its `data`, or a model of the data alone (an `EventData`, which
    names its type): `publish(DepositRecorded(account="a-1", amount=5), source="shop")`.
    Raises `InvalidEvent` (naming the field, e.g. `data.amount`), `UnknownEventType`,
    `EventTooLarge`, or `BrokerUnavailable`. `to`: "celery" (the fleet's queues), "redis-stream"
    or "servicebus".
    """
    event = _event(type, data, source=source, id=id, **attributes)
    return str(_publisher(to).publish([event])[0])


def publish_events(events: Sequence[Event], *, to: str = "celery") -> list[str]:
    """Validate all, then send all, batched per message; returns the ids in order."""
    return list(_publisher(to).publish(events))


@overload
async def publish_async(
    type: EventData, /, *, source: str, id: str | None = None, to: str = "celery", **attributes: Any
) -> str: ...


@overload
async def publish_async(
    type: str,
    data: Any = None,
    /,
    *,
    source: str,
    id: str | None = None,
    to: str = "celery",
    **attributes: Any,
) -> str: ...


async def publish_async(
    type: str | EventData,
    data: Any = None,
    /,
    *,
    source: str,
    id: str | None = None,
    to: str = "celery",
    **attributes: Any,
) -> str:
    """`publish` for asyncio callers: the event loop goes on while the broker takes the event."""
    global _pool  # noqa: PLW0603 - made on first use, in the process that uses it
    event = _event(type, data, source=source, id=id, **attributes)  # invalid: raised here, at once
    with _lock:
        if _pool is None or _pool_pid[0] != os.getpid():  # a forked child has none of the threads
            _pool = ThreadPoolExecutor(ASYNC_THREADS, thread_name_prefix="fleet-publish")
            _pool_pid[0] = os.getpid()
    publisher = _publisher(to)
    ids = await asyncio.get_running_loop().run_in_executor(_pool, publisher.publish, [event])
    return str(ids[0])


def close() -> None:
    """Close this process's publishers and their broker connections; the next call builds them
    again, from the environment as it is then."""
    global _targets
    with _lock:
        targets, _targets = _targets, None
    if targets is not None:
        targets.close()
