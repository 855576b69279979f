"""Handing accepted events to the broker from async code, without blocking the event loop.

A send returns only once the broker holds the messages (RabbitMQ: publisher confirms; Redis: the
LPUSH returned). On Redis the loop sends them itself; otherwise the blocking publisher runs in
threads of its own (both in infra/loop_publisher.py), so that sends never wait behind the
request threads' database reads (a flood of unknown Graph subscriptions, each read afresh, must
not delay every endpoint's 202).

A request that finds no send under way sends its own events. Requests that arrive while one is
are sent together by the next (group commit, by up to `senders` tasks at once): one broker
round trip for many requests under load, no added wait when idle. Any broker failure answers
every request of that send with 503: each caller is told nothing was accepted and sends again;
events that did reach the broker before the failure are deduplicated by their ids downstream.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from handlers.envelope import Event
from handlers.errors import FleetError, PermanentError, PublishFailed
from infra.broker_errors import is_broker_unavailable
from infra.metrics.ingress import EVENTS_ACCEPTED
from workers.ingress.http import Problem, broker_unavailable
from workers.ingress.ports import LoopPublisher

log = logging.getLogger("fleet.ingress")

MAX_GROUP_EVENTS = 5000  # one send stays well under a second even on a slow broker


@dataclass
class _Pending:
    events: Sequence[Event]
    done: asyncio.Future[None]


@contextmanager
def untraced(events: Sequence[Event]) -> Iterator[Sequence[Event]]:
    yield events


@dataclass
class GroupPublisher:
    """Publishes the events of concurrent requests together; `senders` sends may run at once."""

    publisher: LoopPublisher
    senders: int = 2
    sending: Callable[[Sequence[Event]], AbstractContextManager[Sequence[Event]]] = untraced
    """The `send` span of one request's events (CeleryPublisher.sending): it gives the events
    without a creation context its own, before they join a group."""
    _queue: list[_Pending] = field(default_factory=list)
    _wakeup: asyncio.Event | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _sending: int = 0  # sends under way, by requests themselves and by the sender tasks

    async def publish(self, events: Sequence[Event], endpoint: str) -> list[str]:
        """The ids, once the broker holds every event; raises a 503 `Problem` otherwise."""
        if not events:
            return []
        self._start()
        assert self._wakeup is not None
        with self.sending(events) as traced:
            if not self._queue and self._sending == 0:
                # Idle: this request sends its own, sparing the turn of the loop to a sender task
                # and back. Under load a send is nearly always under way, and requests go in groups.
                await self._send_directly(traced)
            else:
                pending = _Pending(traced, asyncio.get_running_loop().create_future())
                self._queue.append(pending)
                self._wakeup.set()
                await pending.done  # raises the send's Problem, if any
        EVENTS_ACCEPTED.labels(endpoint).inc(len(events))
        return [event.id for event in events]

    async def _send_directly(self, events: Sequence[Event]) -> None:
        assert self._wakeup is not None
        self._sending += 1
        try:
            await self.publisher.publish(events)
        except Exception as exc:
            raise _as_problem(exc) from exc
        finally:
            self._sending -= 1
            if self._queue:  # requests that came meanwhile: a sender task takes them
                self._wakeup.set()

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or the app now runs on another loop (tests do that)
            self._loop = loop
            self._queue = []
            self._sending = 0
            self._wakeup = asyncio.Event()
            # Not in the context of the request that starts them: their sends are every request's.
            self._tasks = [
                loop.create_task(self._send_forever(), context=contextvars.Context())
                for _ in range(self.senders)
            ]

    async def _send_forever(self) -> None:
        assert self._wakeup is not None
        while True:
            if not self._queue or self._sending >= self.senders:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            group = self._take_group()
            self._sending += 1
            try:
                outcomes = await self._send(group)
            except BaseException as exc:  # every waiter hears the outcome, whatever it was
                outcomes = [exc] * len(group)
                if not isinstance(exc, Exception):
                    _settle(group, outcomes)
                    raise
            finally:
                self._sending -= 1
            _settle(group, outcomes)

    def _take_group(self) -> list[_Pending]:
        group: list[_Pending] = []
        size = 0
        while self._queue and (not group or size + len(self._queue[0].events) <= MAX_GROUP_EVENTS):
            pending = self._queue.pop(0)
            group.append(pending)
            size += len(pending.events)
        return group

    async def _send(self, group: list[_Pending]) -> list[BaseException | None]:
        """Send the group; the outcome of each request (None: on the broker)."""
        try:
            await self.publisher.publish([event for pending in group for event in pending.events])
            return [None] * len(group)
        except PermanentError:
            # The endpoints check routes and sizes first, so this is not expected; still, one
            # request's bad event must not fail the others: send each request on its own.
            if len(group) == 1:
                raise
        outcomes: list[BaseException | None] = []
        for pending in group:
            try:
                await self.publisher.publish(pending.events)
                outcomes.append(None)
            except PermanentError as exc:
                outcomes.append(exc)
        return outcomes


def _settle(group: list[_Pending], outcomes: list[BaseException | None]) -> None:
    for pending, outcome in zip(group, outcomes, strict=True):
        if pending.done.done():  # the request went away meanwhile
            continue
        if outcome is None:
            pending.done.set_result(None)
        else:
            pending.done.set_exception(_as_problem(outcome))


def _as_problem(exc: BaseException) -> Exception:
    if isinstance(exc, PublishFailed) or is_broker_unavailable(exc):
        log.warning("publishing failed: %s: %s", type(exc).__name__, exc)
        return broker_unavailable(exc)
    if isinstance(exc, FleetError):
        return Problem(422, str(exc))
    log.error("publishing failed unexpectedly", exc_info=exc)
    return Problem(500, "the events could not be published; nothing was accepted")
