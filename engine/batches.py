"""Many broker messages of one transactional route run as one batch: all their events in one
guarded statement or one transaction (engine/effects.py), or nothing kept and None returned, so
the caller runs each message alone through the dispatcher (engine/dispatch.py), as if no batch
had been tried. Only first deliveries at their first attempt come here (docs/consumption.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from engine.dispatch import Delivery, Dispatcher, Outcome
from handlers.envelope import Event, parse_event
from handlers.errors import InvalidEvent
from handlers.registry import Idempotency

log = logging.getLogger("fleet.batches")

BatchedMessage = tuple[Sequence[Any], Delivery]
"""One broker message of a batch: its raw events, and how it was delivered."""


def handle_batch(dispatcher: Dispatcher, task: str, messages: Sequence[BatchedMessage]) -> Outcome | None:
    """The batch's outcome once committed, or None: nothing took effect, run each message alone.

    None when a message is not a batch's to take (a redelivery, a retry, an event that breaks
    the envelope, a route that is not transactional or has a rate limit or breaker) or when a
    handler raised. A failure of the fleet's own database, Redis or broker is raised: the
    messages run alone too, where such a failure sends each one again later.
    """
    route = dispatcher.registry.route_for_task(task)
    if route is None or route.idempotency is not Idempotency.TRANSACTIONAL:
        return None
    if route.downstream is not None or route.breaker is not None:  # the gate counts per message
        return None
    if any(delivery.redelivered or delivery.attempt_base for _, delivery in messages):
        return None  # the dispatcher's crash and attempt bookkeeping applies
    events = _decoded(route.type, messages)
    if events is None:
        return None
    recorder = dispatcher.recorder
    outcome = Outcome()
    began = time.perf_counter()
    recorder.running(route.name, len(events))
    try:
        # the dispatcher's own step: effects, counts, history notes, the metric, the span
        dispatcher.transact_traced(route, events, 1, "", outcome)
    except Exception as exc:
        if dispatcher.is_infrastructure_failure(exc):
            raise
        log.debug("batch of %d messages fell back to one at a time", len(messages), exc_info=True)
        return None
    finally:
        kept = outcome.counts() if outcome.handled + outcome.duplicates == len(events) else {}
        seconds = time.perf_counter() - began
        recorder.finished(
            route.type, route.name, route.queue, counts=kept, seconds=seconds, running=len(events)
        )
    recorder.received(route.type, route.name, route.queue, len(events))  # once: not if it fell back
    now = dispatcher.clock.now()
    for _, delivery in messages:
        if delivery.due is not None:
            recorder.waited(route.queue, now - delivery.due)
    dispatcher.gate.record(route, ok=outcome.handled)
    dispatcher.write_journal(outcome)
    return outcome


def _decoded(event_type: str, messages: Sequence[BatchedMessage]) -> list[Event] | None:
    """Every event of the batch, or None if one would be dead-lettered on decoding."""
    events = []
    for raw_events, _ in messages:
        for raw in raw_events:
            try:
                event = parse_event(raw)
            except InvalidEvent:
                return None
            if event.type != event_type:
                return None
            events.append(event)
    return events
