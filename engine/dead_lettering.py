"""Dead-lettering: an event (or what could be read of one) kept whole with why it failed."""

from __future__ import annotations

import contextlib
import json
import logging
import traceback
from typing import Any

from engine.ports import DeadLetterStore
from engine.records import DeadLetter, fingerprint
from handlers.envelope import Event
from handlers.errors import InvalidEvent
from handlers.routing import Route

log = logging.getLogger("fleet.dispatch")


def bury_event(store: DeadLetterStore, route: Route, event: Event, attempts: int, exc: BaseException) -> None:
    """Dead-letter an event whose handler failed for good."""
    _bury(
        store,
        route,
        event_type=event.type,
        source=event.source,
        event_id=event.id,
        envelope=event.to_json().decode(),
        attempts=attempts,
        exc=exc,
        trace="".join(traceback.format_exception(exc)),
        group=fingerprint(type(exc).__name__, exc),
    )


def bury_raw(store: DeadLetterStore, route: Route, raw: Any, fallback_id: str, exc: InvalidEvent) -> None:
    """An event that never parsed: keep it as received, with what can be read of its identity."""
    decoded = raw
    if isinstance(raw, str | bytes):
        with contextlib.suppress(ValueError):
            decoded = json.loads(raw)
    raw_dict: dict[str, Any] = decoded if isinstance(decoded, dict) else {}

    def text(name: str, default: str) -> str:
        value = raw_dict.get(name)
        return value if isinstance(value, str) and value else default

    _bury(
        store,
        route,
        event_type=text("type", "?")[:256],
        source=text("source", "fleet:invalid")[:1024],
        event_id=text("id", fallback_id)[:1024],
        envelope=raw if isinstance(raw, str) else json.dumps(raw, default=repr),
        attempts=1,
        exc=exc,
        trace="",
        group=fingerprint(f"{type(exc).__name__}:{exc.field}", None),
    )


def _bury(
    store: DeadLetterStore,
    route: Route,
    *,
    event_type: str,
    source: str,
    event_id: str,
    envelope: str,
    attempts: int,
    exc: BaseException,
    trace: str,
    group: str,
) -> None:
    error_type = type(exc).__name__
    store.add(
        DeadLetter(
            handler=route.name,
            event_type=event_type,
            source=source,
            event_id=event_id,
            queue=route.queue,
            envelope=envelope,
            attempts=attempts,
            error_type=error_type,
            error_message=str(exc),
            traceback=trace,
            fingerprint=group,
        )
    )
    # Logged once it is kept: a store that cannot be reached leaves the message to run again.
    log.error(
        "%s %s/%s dead-lettered after %d attempts: %s: %s",
        event_type,
        source,
        event_id,
        attempts,
        error_type,
        exc,
    )
