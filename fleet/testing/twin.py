"""`FleetTwin`: a fleet in one process, for unit tests. Events published to it wait on an
in-memory queue; `run_until_idle()` hands each message to the real `Dispatcher`, moving a
virtual clock forward to each retry's due time, so a test of retries takes no wall time."""

from __future__ import annotations

import heapq
import itertools
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.dispatch import Delivery, Dispatcher
from engine.effects import Effects, check_wiring
from engine.records import Filter
from engine.replay import ReplayReport, replay
from handlers.domains import Domain, route_table
from handlers.envelope import DEFAULT_MAX_EVENT_BYTES, Event, check_size
from handlers.registry import Registry, Route
from infra.memory.stores import (
    MemoryAttempts,
    MemoryDatabase,
    MemoryDeadLetters,
    MemoryDelayed,
    MemoryLedger,
    MemoryOutbox,
    MemoryTransactions,
    StoredLetter,
)


class VirtualClock:
    """Time that moves only when told: `advance(seconds)`, or the twin, to the next due message."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.time = start

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.time += max(0.0, seconds)


@dataclass(order=True)
class _Message:
    due: float
    order: int
    route: Route = field(compare=False)
    bodies: list[str | dict[str, Any]] = field(compare=False)
    attempt: int = field(compare=False, default=0)
    id: str = field(compare=False, default_factory=lambda: uuid.uuid4().hex)


@dataclass
class TwinOutcome:
    """What `run_until_idle` did, summed over the messages it ran."""

    messages: int = 0
    handled: int = 0
    duplicates: int = 0
    retried: int = 0
    dead: int = 0


class _TwinQueues:
    """The twin's broker: the `RoutePublisher` the engine sends follow-ups and retries to."""

    def __init__(self, registry: Registry, clock: VirtualClock) -> None:
        self.registry = registry
        self.clock = clock
        self.waiting: list[_Message] = []
        self.order = itertools.count()
        self.published: list[Event] = []

    def publish(self, events: Sequence[Event]) -> list[str]:
        routes = [self.registry.route_for(event.type) for event in events]  # all checked first
        for event in events:
            check_size(event, DEFAULT_MAX_EVENT_BYTES)
        for route, event in zip(routes, events, strict=True):
            self.published.append(event)
            self.send(route, [event.to_json().decode()])
        return [event.id for event in events]

    def send(
        self,
        route: Route,
        events: Sequence[str | dict[str, Any]],
        *,
        attempt: int = 0,
        countdown: float | None = None,
        producer: Any = None,
    ) -> None:
        due = self.clock.now() + (countdown or 0.0)
        heapq.heappush(self.waiting, _Message(due, next(self.order), route, list(events), attempt))


class FleetTwin:
    """Some domains' routes, run by the real dispatcher on in-memory stores.

    `services`, `transaction_ports` and `insert_ports` are the ports handlers ask for, by keyword
    (a domain's `DomainPorts` parts; a transaction port is built from a `MemoryTransaction`,
    whose `on_commit` keeps its writes only if the transaction commits). `clock` is given to
    handlers that ask for one. Delayed retries run when the virtual clock reaches them.
    """

    def __init__(
        self,
        domains: Iterable[Domain],
        *,
        services: Mapping[str, object] | None = None,
        transaction_ports: Mapping[str, Callable[[Any], Any]] | None = None,
        insert_ports: Mapping[str, Callable[[], Any]] | None = None,
        clock: VirtualClock | None = None,
        eta_max: float = 300.0,
    ) -> None:
        self.clock = clock or VirtualClock()
        self.registry = Registry(route_table(domains))
        self.database = MemoryDatabase()
        self.ledger = MemoryLedger(self.database)
        self.outbox = MemoryOutbox(self.database)
        self.dead_letter_store = MemoryDeadLetters()
        self.delayed = MemoryDelayed()
        self.queues = _TwinQueues(self.registry, self.clock)
        services = {"clock": self.clock, **(services or {})}
        transaction_ports = dict(transaction_ports or {})
        insert_ports = dict(insert_ports or {})
        check_wiring(self.registry, services, transaction_ports, insert_ports)
        effects = Effects(
            registry=self.registry,
            transactions=MemoryTransactions(self.database),
            ledger=self.ledger,
            outbox=self.outbox,
            publisher=self.queues,
            clock=self.clock,
            services=services,
            transaction_ports=transaction_ports,
            insert_ports=insert_ports,
        )
        self.dispatcher = Dispatcher(
            registry=self.registry,
            effects=effects,
            dead_letters=self.dead_letter_store,
            attempts=MemoryAttempts(),
            publisher=self.queues,
            delayed=self.delayed,
            clock=self.clock,
            is_infrastructure_failure=lambda exc: False,
            eta_max=eta_max,
        )

    def publish(self, *events: Event) -> list[str]:
        """Validate every event, then queue them, each as a message of its own."""
        return self.queues.publish(events)

    def deliver(self, events: Sequence[Event], *, attempt: int = 0) -> None:
        """Queue several events of one type as one message (as the publisher batches them)."""
        route = self.registry.route_for(events[0].type)
        self.queues.send(route, [event.to_json().decode() for event in events], attempt=attempt)

    def run_until_idle(self, max_messages: int = 10_000) -> TwinOutcome:
        """Run every message, those it causes (follow-ups, retries) included, moving the clock to
        each one's due time; stops when none is left."""
        total = TwinOutcome()
        while total.messages < max_messages:
            self._release_delayed()
            if not self.queues.waiting:
                return total
            message = heapq.heappop(self.queues.waiting)
            if message.due > self.clock.now():
                self.clock.advance(message.due - self.clock.now())
            delivery = Delivery(message.id, message.route.task, message.attempt, redelivered=False)
            outcome = self.dispatcher.handle(message.bodies, delivery)
            total.messages += 1
            total.handled += outcome.handled
            total.duplicates += outcome.duplicates
            total.retried += outcome.retried
            total.dead += outcome.dead
        raise RuntimeError(f"still busy after {max_messages} messages: a loop of follow-ups?")

    def _release_delayed(self) -> None:
        """Hand the delayed store's retries to the queues once they are next in time (the fleet's
        `fleet.retries.release_due` task does this every second)."""
        if not self.delayed.waiting:
            return
        due = min(at for at, _ in self.delayed.waiting)
        if self.queues.waiting and self.queues.waiting[0].due < due:
            return
        self.clock.advance(due - self.clock.now())
        for message in self.delayed.take_due(self.clock.now()):
            route = self.registry.route_for_task(message["task"])
            if route is not None:
                self.queues.send(route, message["events"], attempt=message["attempt"])

    def dead_letters(self, where: Filter | None = None) -> list[StoredLetter]:
        """The dead-letter queue, newest first (only letters still dead, unless `where` says)."""
        return self.dead_letter_store.find(where or Filter(), limit=1_000_000)

    def replay(self, where: Filter | None = None) -> ReplayReport:
        """Send dead letters again with their ids, as `fleet dlq replay` does."""
        return replay(self.dead_letter_store, self.queues, where or Filter())

    def is_done(self, handler: str, event: Event) -> bool:
        """Whether the ledger says `handler` took effect for `event`."""
        return self.ledger.is_done(handler, event.key)

    def rows(self, table: str) -> list[dict[str, Any]]:
        """The rows insert ports wrote to `table`, in order."""
        return list(self.database.tables.get(table, []))

    @property
    def published(self) -> list[Event]:
        """Every event published to the twin, follow-ups and replays included."""
        return list(self.queues.published)
