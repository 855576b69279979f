"""How a route's handler takes effect exactly once, by the route's idempotency mode.

- transactional: the ledger rows, the handler's database effects and its follow-ups (outbox)
  commit together. A route whose ports only buffer inserts (`InsertPort`) runs its handlers
  first and writes everything in one guarded statement (`GuardedWrites`); any other
  route, or one whose handler raised, takes the ledger rows first in a transaction and runs the
  handlers of the new events only;
- claim: a leased claim committed before the handler's outside effect, completed after; the
  handler runs under a deadline of `CLAIM_BUDGET` x the lease from its own claim (`deadline`);
- natural: the handler's effect is idempotent by itself.

Follow-up events are published right after the commit and their outbox rows deleted; what a
crash leaves behind, the relay publishes. Errors go back to the dispatcher (engine/dispatch.py),
which retries or dead-letters.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from engine.ports import (
    GuardedWrites,
    InsertPort,
    Ledger,
    NoTracer,
    Outbox,
    Tracer,
    Transaction,
    TransactionPort,
    Transactions,
)
from engine.records import EventWrites, digest
from engine.records import Outcome as Entry
from engine.running import running
from handlers.contracts import parse_data
from handlers.envelope import Event
from handlers.ports import Clock, Publisher
from handlers.registry import Idempotency, Registry, Route

log = logging.getLogger("fleet.effects")
CLAIM_BUDGET = 0.9
"""The share of a claim's lease its handler may run: the rest covers the completion's commit."""


def no_deadline(seconds: float, what: str) -> AbstractContextManager[None]:
    return nullcontext()


@dataclass(frozen=True, slots=True)
class Planned:
    """An event whose handler ran before the database was touched; `writes` None: a repeat of an
    earlier event in the same message."""

    event: Event
    writes: EventWrites | None
    follow_ups: list[Event]


@dataclass
class Effects:
    registry: Registry
    transactions: Transactions
    ledger: Ledger
    outbox: Outbox
    publisher: Publisher
    clock: Clock
    services: Mapping[str, object]
    """Process-wide ports, by the keyword a handler names them with."""
    transaction_ports: Mapping[str, Callable[[Transaction], TransactionPort]]
    """Ports bound to the handler's transaction (transactional routes only)."""
    insert_ports: Mapping[str, Callable[[], InsertPort]] = field(default_factory=dict)
    """Ports that only buffer rows to insert (transactional routes only)."""
    guarded: GuardedWrites | None = None
    """Writes an insert-only route's rows with its ledger rows in one statement, where supported."""
    deadline: Callable[[float, str], AbstractContextManager[None]] = no_deadline
    """Ends the process if a claimed event's handler outruns its budget (infra/claim_deadline.py):
    the budget follows each event, never the message it came in."""
    tracer: Tracer = field(default_factory=NoTracer)
    """A batch's per-event spans, and the follow-ups' creation contexts."""

    def transactional(self, route: Route, events: list[Event], attempt: int) -> list[tuple[Event, Entry]]:
        """Each event with HANDLED or DUPLICATE, once they are committed; raises if a handler did
        (then nothing was kept)."""
        if self.guarded is not None and self.guarded.supported and self._insert_only(route):
            planned = self._plan(route, events, attempt)
            if planned is not None:
                return self._apply_planned(route, planned)
        return self._in_transaction(route, events, attempt)

    def claimed(self, route: Route, event: Event, attempt: int, owner: str) -> Entry | float:
        """HANDLED, DUPLICATE, or the seconds until the lease of the live message holding it ends."""
        claims = self.ledger.claim(route.name, [event.key], owner, route.lease, self.clock.now())
        if event.key in claims.done:
            return Entry.DUPLICATE
        if event.key in claims.busy:
            return claims.busy[event.key]
        try:
            with self.deadline(route.lease * CLAIM_BUDGET, f"{route.type} {event.source}/{event.id}"):
                follow_ups = self._call(route, event, attempt, {})
        except BaseException:
            self.ledger.release(route.name, event.key, owner)
            raise
        with self.transactions.begin() as connection:
            if not self.ledger.complete(connection, route.name, [event.key], owner, self.clock.now()):
                log.error(
                    "claim on %s/%s was taken over before it completed: lease %ss too short",
                    event.source,
                    event.id,
                    route.lease,
                )
            outbox_ids = self.outbox.add(connection, follow_ups, self.clock.now())
        self._publish_follow_ups(outbox_ids, follow_ups)
        return Entry.HANDLED

    def natural(self, route: Route, event: Event, attempt: int) -> None:
        follow_ups = self._call(route, event, attempt, {})
        if follow_ups:
            with self.transactions.begin() as connection:
                outbox_ids = self.outbox.add(connection, follow_ups, self.clock.now())
            self._publish_follow_ups(outbox_ids, follow_ups)

    def _insert_only(self, route: Route) -> bool:
        """Whether every transaction port the handler wants only buffers rows to insert."""
        return not any(name in self.transaction_ports for name in _wants(route.handler))

    def _plan(self, route: Route, events: list[Event], attempt: int) -> list[Planned] | None:
        """Run the handlers before the database is touched (their ports only buffer rows); None
        if one raised: then the ledger decides first, so a duplicate never runs its handler."""
        planned: list[Planned] = []
        seen: set[tuple[str, str]] = set()
        wanted = _wants(route.handler)
        for event in events:
            if event.key in seen:
                planned.append(Planned(event, None, []))
                continue
            seen.add(event.key)
            ports = {name: make() for name, make in self.insert_ports.items() if name in wanted}
            try:
                follow_ups = self._call(route, event, attempt, ports)
            except Exception:
                return None
            rows = [(port.table, port.take()) for port in ports.values()]
            bodies = [follow_up.to_json().decode() for follow_up in follow_ups]
            writes = EventWrites(digest(event.key), rows, bodies)
            planned.append(Planned(event, writes, follow_ups))
        return planned

    def _apply_planned(self, route: Route, planned: list[Planned]) -> list[tuple[Event, Entry]]:
        assert self.guarded is not None
        writes = [item.writes for item in planned if item.writes is not None]
        applied = self.guarded.apply(route.name, writes, self.clock.now())
        follow_ups: list[Event] = []
        ran: list[tuple[Event, Entry]] = []
        for item in planned:
            if item.writes is not None and item.writes.key in applied.fresh:
                follow_ups += item.follow_ups
                ran.append((item.event, Entry.HANDLED))
            else:
                ran.append((item.event, Entry.DUPLICATE))
        self._publish_follow_ups(applied.outbox_ids, follow_ups)
        return ran

    def _in_transaction(self, route: Route, events: list[Event], attempt: int) -> list[tuple[Event, Entry]]:
        """The ledger rows first, then the handlers of the new events, in one transaction."""
        now = self.clock.now()
        follow_ups: list[Event] = []
        wanted = _wants(route.handler)
        ran: list[tuple[Event, Entry]] = []
        with self.transactions.begin() as connection:
            fresh = self.ledger.record(connection, route.name, [event.key for event in events], now)
            ports = {
                name: make(connection) for name, make in self.transaction_ports.items() if name in wanted
            }
            inserts = {name: make() for name, make in self.insert_ports.items() if name in wanted}
            for event in events:
                if event.key in fresh:
                    fresh.discard(event.key)
                    follow_ups += self._call(route, event, attempt, {**ports, **inserts})
                    ran.append((event, Entry.HANDLED))
                else:
                    ran.append((event, Entry.DUPLICATE))
            for port in ports.values():
                port.flush()
            for insert in inserts.values():
                self.transactions.insert(connection, insert.table, insert.take())
            outbox_ids = self.outbox.add(connection, follow_ups, now)
        self._publish_follow_ups(outbox_ids, follow_ups)
        return ran

    def _call(self, route: Route, event: Event, attempt: int, ports: Mapping[str, object]) -> list[Event]:
        kwargs: dict[str, object] = {}
        for name in _wants(route.handler):
            if name == "attempt":
                kwargs[name] = attempt
            elif name == "data":  # the route's model of the data; a breach is an InvalidEvent
                kwargs[name] = parse_data(route, event.data)
            elif name in ports:
                kwargs[name] = ports[name]
            else:
                kwargs[name] = self.services[name]
        with running(event, attempt), self.tracer.handling(route, event, attempt):
            follow_ups = list(route.handler(event, **kwargs) or ())
            for follow_up in follow_ups:
                # An unroutable follow-up fails its cause, before commit.
                self.registry.route_for(follow_up.type)
            return self.tracer.created(event, follow_ups) if follow_ups else follow_ups

    def _publish_follow_ups(self, outbox_ids: list[int], follow_ups: list[Event]) -> None:
        if not follow_ups:
            return
        try:
            self.publisher.publish(follow_ups)
        except Exception:  # the relay publishes them later; the rows stay
            log.warning("follow-ups left in the outbox for the relay", exc_info=True)
            return
        self.outbox.remove(outbox_ids)


@cache
def _wants(handler: Callable[..., Any]) -> tuple[str, ...]:
    """The keyword parameters a handler asks to be given."""
    return tuple(
        name
        for name, parameter in inspect.signature(handler).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    )


def check_wiring(
    registry: Registry,
    services: Mapping[str, object],
    transaction_ports: Mapping[str, object],
    insert_ports: Mapping[str, object] | None = None,
) -> None:
    """Fail at start, not at the first event, when a handler asks for a port nobody provides."""
    for route in registry.routes():
        for name in _wants(route.handler):
            in_transaction = name in transaction_ports or name in (insert_ports or {})
            tx_only = in_transaction and route.idempotency is Idempotency.TRANSACTIONAL
            if name == "data":
                if route.data is None:
                    raise LookupError(f"{route.task}: handler asks for 'data', but its route has no model")
                continue
            if name != "attempt" and name not in services and not tx_only:
                mode = route.idempotency
                raise LookupError(f"{route.task}: handler asks for {name!r}, not wired for {mode} routes")
