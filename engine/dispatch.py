"""Runs one broker message's events through their handler: exactly once in effect, retried or
dead-lettered one event at a time.

The hook timeline for a message of n events of one route:

1. decode: an event that breaks the envelope is dead-lettered at once (permanent);
2. count the start in the message's attempt record (`Attempts`, infra/attempts.py): written before any
   handler runs; its reply is read first only when the broker flags the message redelivered;
3. first delivery of a transactional route: the fast path, all n at once (engine/effects.py: one
   guarded statement, or one transaction), so a busy fleet pays one commit per message, not per
   event; if any handler raises, nothing is kept and the message falls back to:
4. one event at a time (a redelivered message, a fallback, claim and natural routes): each run is
   counted first, so an event that kills its worker every time is dead-lettered without running
   once its runs pass the limit, and its neighbours still take effect;
5. a failure is dead-lettered (permanent, or the last attempt) or sent again later (RetryPolicy);
   a failure of the fleet's own database, Redis or broker is no event's fault: the whole message
   is sent again later by the task (tasks/handle.py), and no attempt is spent;
6. follow-up events go out through the outbox after commit;
7. what became of each event is counted (`Recorder`: Prometheus) and handed to the event history
   (infra/history.py), which writes it in the background, off the message's critical path.

Attempt numbers are 1-based: a message sent with `attempt_base` b runs its events as attempt
b + 1; after a worker death, every event of the message is charged the lost run (an event queued
behind a crashing neighbour may be charged one run it never made).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.dead_lettering import bury_event, bury_raw
from engine.effects import Effects
from engine.ports import (
    Attempts,
    DeadLetterStore,
    Delayed,
    Gate,
    HistoryWriter,
    IsInfrastructureFailure,
    NoRecorder,
    NoTracer,
    OpenGate,
    Recorder,
    RoutePublisher,
    Tracer,
)
from engine.records import HistoryMode, MessageStart, digest, entry_row
from engine.records import Outcome as Entry
from engine.running import running
from handlers.envelope import Event, parse_event
from handlers.errors import InvalidEvent, PermanentError, RateLimited
from handlers.ports import Clock
from handlers.registry import Idempotency, Registry, Route

log = logging.getLogger("fleet.dispatch")
FIRST_DELIVERY = MessageStart(deliveries=1, fell_back=False)


@dataclass(frozen=True, slots=True)
class Delivery:
    message_id: str
    task: str
    attempt_base: int = 0
    due: float | None = None
    """When the message became due on the broker (epoch seconds), for the queue-wait metric."""
    redelivered: bool = True
    """The broker's redelivered flag; False vouches that no worker has had the message before."""


@dataclass
class Outcome:
    """What became of a message's events (for logs, metrics and tests)."""

    handled: int = 0
    duplicates: int = 0
    retried: int = 0
    dead: int = 0
    postponed: int = 0
    journal: list[dict[str, Any]] = field(default_factory=list)
    """History entries not yet written."""

    def counts(self) -> dict[str, int]:
        return {
            "handled": self.handled,
            "duplicate": self.duplicates,
            "retried": self.retried,
            "dead_lettered": self.dead,
            "postponed": self.postponed,
        }


class WorkerLost(Exception):
    """The worker died while running this event, more often than its attempts allow."""


@dataclass
class Dispatcher:
    registry: Registry
    effects: Effects
    """How each idempotency mode takes effect (engine/effects.py)."""
    dead_letters: DeadLetterStore
    attempts: Attempts
    publisher: RoutePublisher
    delayed: Delayed
    clock: Clock
    is_infrastructure_failure: IsInfrastructureFailure
    """Tells the fleet's own failures (database, Redis, broker) from the event's (infra/failures.py)."""
    eta_max: float = 300.0
    gate: Gate = field(default_factory=OpenGate)
    recorder: Recorder = field(default_factory=NoRecorder)
    history: HistoryWriter | None = None
    history_mode: HistoryMode = HistoryMode.ALL
    tracer: Tracer = field(default_factory=NoTracer)

    def handle(self, raw_events: Sequence[Any], delivery: Delivery) -> Outcome:
        outcome = Outcome()
        route = self.registry.route_for_task(delivery.task)
        if route is None:  # the worker only consumes tasks it registered; kept for safety
            raise LookupError(f"no route for task {delivery.task!r}")
        self.recorder.received(route.type, route.name, route.queue, len(raw_events))
        if delivery.due is not None:
            self.recorder.waited(route.queue, self.clock.now() - delivery.due)
        began = time.perf_counter()
        self.recorder.running(route.name, len(raw_events))
        try:
            self._handle(route, raw_events, delivery, outcome)
        finally:
            self.gate.release(route)
            seconds = time.perf_counter() - began
            self.recorder.finished(
                route.type,
                route.name,
                route.queue,
                counts=outcome.counts(),
                seconds=seconds,
                running=len(raw_events),
            )
        self.write_journal(outcome)
        return outcome

    def _handle(self, route: Route, raw_events: Sequence[Any], delivery: Delivery, outcome: Outcome) -> None:
        events = self._decode(route, raw_events, delivery, outcome)
        granted, wait = self.gate.admit(route, len(events)) if events else (0, 0.0)
        if granted < len(events):  # rate limit or open breaker: later, without spending an attempt
            self._later(route, events[granted:], delivery.attempt_base, wait)
            outcome.postponed += len(events) - granted
            events = events[:granted]
        if not events:
            return
        pending = self.attempts.start(delivery.message_id)
        try:
            # The broker flags every message it hands out again (a dead worker's, a returned one);
            # without the flag this is a first delivery, and the reply can wait for the commit.
            start = pending.result() if delivery.redelivered else FIRST_DELIVERY
            self._run(route, events, delivery, start, outcome)
            pending.result()
        except BaseException as exc:
            pending.close()
            if self.is_infrastructure_failure(exc):  # nothing took effect: the message runs again later
                self._forget_start(delivery.message_id)
            raise
        self.attempts.finished(delivery.message_id)

    def _forget_start(self, message_id: str) -> None:
        """The message comes back under the same id and must start afresh; if the record cannot
        be forgotten now (the same outage), its redelivery counts one start too many."""
        try:
            self.attempts.finished(message_id)
            self.attempts.flush()
        except Exception as exc:
            if not self.is_infrastructure_failure(exc):
                raise

    def _run(
        self, route: Route, events: list[Event], delivery: Delivery, start: MessageStart, outcome: Outcome
    ) -> None:
        first = start.deliveries == 1
        if first and route.idempotency is Idempotency.TRANSACTIONAL:
            fast = Outcome()
            attempt = delivery.attempt_base + 1
            try:
                self.transact_traced(route, events, attempt, delivery.message_id, fast)
                outcome.handled, outcome.duplicates = fast.handled, fast.duplicates
                outcome.journal += fast.journal
                self.gate.record(route, ok=fast.handled)
                return
            except Exception as exc:
                if self.is_infrastructure_failure(exc):
                    raise
                log.debug(
                    "batch of %d %s events fell back to one at a time", len(events), route.type, exc_info=True
                )
                self.attempts.falling_back(delivery.message_id)
                self._one_by_one(route, events, delivery, extra_run=0, counting=True, outcome=outcome)
                return
        if first:  # a claim or natural route's first delivery: every event's first run in this message
            self._one_by_one(route, events, delivery, extra_run=1, counting=False, outcome=outcome)
            return
        crashed = not start.fell_back  # it came back after it started and without falling back
        self._one_by_one(
            route, events, delivery, extra_run=1 if crashed else 0, counting=True, outcome=outcome
        )

    def _decode(
        self, route: Route, raw_events: Sequence[Any], delivery: Delivery, outcome: Outcome
    ) -> list[Event]:
        events = []
        for index, raw in enumerate(raw_events):
            try:
                event = parse_event(raw)
                if event.type != route.type:
                    raise InvalidEvent(
                        "type", f"{event.type!r} was sent to {route.task}, which handles {route.type!r}"
                    )
            except InvalidEvent as exc:
                bury_raw(self.dead_letters, route, raw, f"{delivery.message_id}/{index}", exc)
                outcome.dead += 1
                continue  # its dead letter, not the history, keeps what can be read of it
            events.append(event)
        return events

    def _one_by_one(
        self,
        route: Route,
        events: list[Event],
        delivery: Delivery,
        *,
        extra_run: int,
        counting: bool,
        outcome: Outcome,
    ) -> None:
        seen: set[tuple[str, str]] = set()
        for event in events:
            if event.key in seen:
                outcome.duplicates += 1
                continue
            seen.add(event.key)
            runs = self.attempts.run(delivery.message_id, digest(event.key)) if counting else 0
            attempt = delivery.attempt_base + extra_run + runs
            span = self.tracer.processing(route, [event], attempt, delivery.message_id)
            with running(event, attempt), span:
                self._one(route, event, attempt, delivery, outcome)

    def _one(self, route: Route, event: Event, attempt: int, delivery: Delivery, outcome: Outcome) -> None:
        if attempt > route.retry.max_attempts:
            runs_made, limit = attempt - 1, route.retry.max_attempts
            lost = WorkerLost(f"the worker died while running this event; {runs_made} runs, limit {limit}")
            self.tracer.failed(lost)
            self.tracer.dead_lettered(attempt - 1, str(lost))
            self._dead_letter(route, event, attempt - 1, lost)
            outcome.dead += 1
            self._note(outcome, route, event, Entry.DEAD_LETTERED, attempt=attempt - 1, detail=str(lost))
            return
        try:
            self._run_one(route, event, attempt, delivery, outcome)
            self.gate.record(route, ok=1)
        except Exception as exc:
            if self.is_infrastructure_failure(exc):
                raise
            self.tracer.failed(exc)
            # Bad input is not the downstream's fault; throttling (429) is a downstream that answers.
            throttled = isinstance(exc, RateLimited)
            failed = not throttled and not isinstance(exc, PermanentError)
            self.gate.record(route, ok=int(throttled), failed=int(failed))
            self._failed(route, event, attempt, exc, outcome)

    def transact_traced(
        self, route: Route, events: list[Event], attempt: int, message_id: str, outcome: Outcome
    ) -> None:
        """`transact` under the events' `process` span, which a failure marks before it is raised."""
        with self.tracer.processing(route, events, attempt, message_id):
            try:
                self.transact(route, events, attempt, outcome)
            except Exception as exc:
                self.tracer.failed(exc)
                raise

    def transact(self, route: Route, events: list[Event], attempt: int, outcome: Outcome) -> None:
        """Every event in one guarded statement or transaction, counted in `outcome`; raises if
        any handler did (nothing kept). A message's fast path, and a batch's (engine/batches.py)."""
        for event, entry in self.effects.transactional(route, events, attempt):
            self._took_effect(outcome, route, event, entry, attempt)
        self.recorder.committed(route.name, len(events))

    def _claimed(
        self, route: Route, event: Event, attempt: int, delivery: Delivery, outcome: Outcome
    ) -> None:
        result = self.effects.claimed(route, event, attempt, owner=delivery.message_id)
        if isinstance(result, float):  # another live message runs it: look again when its lease ends
            self._later(route, [event], attempt - 1, result + 1.0)
            outcome.postponed += 1
            return
        self._took_effect(outcome, route, event, result, attempt)

    def _natural(self, route: Route, event: Event, attempt: int, outcome: Outcome) -> None:
        self.effects.natural(route, event, attempt)
        self._took_effect(outcome, route, event, Entry.HANDLED, attempt)

    def _took_effect(self, outcome: Outcome, route: Route, event: Event, entry: Entry, attempt: int) -> None:
        """Count an event HANDLED now or found a DUPLICATE, and note it for the history."""
        if entry is Entry.HANDLED:
            outcome.handled += 1
        else:
            outcome.duplicates += 1
        self._note(outcome, route, event, entry, attempt=attempt)

    def _run_one(
        self, route: Route, event: Event, attempt: int, delivery: Delivery, outcome: Outcome
    ) -> None:
        if route.idempotency is Idempotency.TRANSACTIONAL:
            self.transact(route, [event], attempt, outcome)
        elif route.idempotency is Idempotency.CLAIM:
            self._claimed(route, event, attempt, delivery, outcome)
        else:
            self._natural(route, event, attempt, outcome)

    def _failed(self, route: Route, event: Event, attempt: int, exc: Exception, outcome: Outcome) -> None:
        if isinstance(exc, PermanentError) or route.retry.exhausted(attempt):
            self.tracer.dead_lettered(attempt, f"{type(exc).__name__}: {exc}")
            self._dead_letter(route, event, attempt, exc)
            outcome.dead += 1
            self._note(
                outcome,
                route,
                event,
                Entry.DEAD_LETTERED,
                attempt=attempt,
                detail=f"{type(exc).__name__}: {exc}",
            )
            return
        delay = exc.retry_after if isinstance(exc, RateLimited) else route.retry.backoff(attempt)
        log.warning(
            "%s %s/%s failed on attempt %d (%s: %s); retrying in %.2fs",
            route.type,
            event.source,
            event.id,
            attempt,
            type(exc).__name__,
            exc,
            delay,
        )
        self.tracer.retrying(attempt, delay, f"{type(exc).__name__}: {exc}")
        self._later(route, [event], attempt, delay)
        outcome.retried += 1
        detail = f"{type(exc).__name__}: {exc}; again in {delay:.2f}s"
        self._note(outcome, route, event, Entry.RETRY_SCHEDULED, attempt=attempt, detail=detail)

    def _note(
        self, outcome: Outcome, route: Route, event: Event, entry: Entry, *, attempt: int, detail: str = ""
    ) -> None:
        """Keep a history entry for the end of the message (failures always, the rest in mode ALL)."""
        wanted = self.history_mode is HistoryMode.ALL or (
            self.history_mode is HistoryMode.FAILURES
            and entry in (Entry.RETRY_SCHEDULED, Entry.DEAD_LETTERED)
        )
        if self.history is not None and wanted:
            row = entry_row(
                event, entry, handler=route.name, attempt=attempt, at=self.clock.now(), detail=detail
            )
            outcome.journal.append(row)

    def write_journal(self, outcome: Outcome) -> None:
        """Hand `outcome`'s history entries to the history writer."""
        if self.history is None or not outcome.journal:
            return
        self.history.append(outcome.journal)

    def _later(self, route: Route, events: list[Event], attempt_base: int, delay: float) -> None:
        bodies = [event.to_json().decode() for event in events]
        if delay <= self.eta_max:
            self.publisher.send(route, bodies, attempt=attempt_base, countdown=delay)
        else:
            message = {"task": route.task, "events": bodies, "attempt": attempt_base}
            self.delayed.add(message, self.clock.now() + delay)

    def _dead_letter(self, route: Route, event: Event, attempts: int, exc: BaseException) -> None:
        bury_event(self.dead_letters, route, event, attempts, exc)
