"""`fleet bridge servicebus`: from an Azure Service Bus queue to the fleet's queues.

Peek-lock batches; each message's lock is renewed (AutoLockRenewer) while its batch is handed
over, and the message is completed only once the hand-over is durable. A message that is not a
valid, routable CloudEvent is dead-lettered in Service Bus with the reason (the error type) and
a description. A crash before completing leaves the locks to expire, and the service delivers
the messages again: the ledger makes the second hand-over a no-op in effect. When the namespace
is unreachable the bridge reconnects by itself, with backoff.

With sessions (FLEET_SERVICEBUS_SESSIONS), the bridge holds one session at a time and hands its
messages over in order, a batch as one broker message, which a worker runs in order; and it
completes a batch, and takes the session's next, only once the batch has run (ledger) or been
dead-lettered, so no two batches of one session ever run side by side, whatever the
concurrency of bridges and workers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from handlers.errors import PermanentError
from handlers.registry import Idempotency
from infra.failures import INFRASTRUCTURE_FAILURES
from infra.metrics.bridges import BRIDGE_CONNECTED, BRIDGE_MESSAGES
from infra.transports.effects import SqlEffects
from infra.transports.servicebus import body_of, traceparent_of
from infra.transports.servicebus_receiver import (
    SERVICEBUS_FAILURES,
    Connection,
    QueueReceiving,
    Receiver,
    lock_seconds_left,
)
from workers.bridges.handover import Checked, HandOver

log = logging.getLogger("fleet.bridge.servicebus")
BRIDGE = "servicebus"
BACKOFF_START = 0.5
BACKOFF_MAX = 30.0
EFFECT_POLL = 0.02
RUN_WAIT_LOG = 30.0
DESCRIPTION_LIMIT = 1024  # the service keeps a dead-letter description to a few KB


class ServiceBusBridge:
    def __init__(
        self,
        receiving: QueueReceiving,
        hand_over: HandOver,
        *,
        sessions: bool,
        effects: SqlEffects,
        batch: int,
    ) -> None:
        self._effects = effects
        self._receiving = receiving
        self._hand_over = hand_over
        self._sessions = sessions
        self._batch = batch
        self._max_wait = receiving.max_wait

    def run(self, stop: threading.Event) -> None:
        """Bridge until `stop` is set; the batch in hand is finished first."""
        backoff = BACKOFF_START
        connected = BRIDGE_CONNECTED.labels(BRIDGE)
        connected.set(0)
        while not stop.is_set():
            try:
                with self._receiving.connected() as connection:
                    while not stop.is_set():
                        if self._receive(connection, stop, connected.set):
                            backoff = BACKOFF_START
            except (*SERVICEBUS_FAILURES, OSError, *INFRASTRUCTURE_FAILURES) as exc:  # type: ignore[misc]
                connected.set(0)
                log.warning(
                    "servicebus bridge interrupted (%s: %s); locked messages come back when their "
                    "locks expire; reconnecting in %.1fs",
                    type(exc).__name__,
                    exc,
                    backoff,
                )
                stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
        connected.set(0)

    def _receive(
        self, connection: Connection, stop: threading.Event, set_connected: Callable[[int], None]
    ) -> bool:
        """One receiver's life: the queue's, or one session's until it runs dry."""
        with connection.receiver() as receiver:
            set_connected(1)
            if receiver is None:  # no session is free: nothing to do for now
                stop.wait(self._max_wait)
                return True
            while not stop.is_set():
                messages = receiver.receive(self._batch, self._max_wait)
                if not messages:
                    if self._sessions:
                        return True  # this session is dry: let another bridge or turn have the next
                    continue
                with locks_renewed(receiver, [] if self._sessions else messages):
                    self.process(receiver, messages)
            return True

    def process(self, receiver: Receiver, messages: list[Any]) -> None:
        valid: list[tuple[Any, Checked]] = []
        poison: list[tuple[Any, PermanentError]] = []
        for message in messages:
            checked = self._hand_over.check(body_of(message), traceparent_of(message))
            if isinstance(checked, Checked):
                valid.append((message, checked))
            else:
                poison.append((message, checked))
        if valid:
            self._hand_over.send([checked for _, checked in valid])
            if self._sessions:
                self._wait_until_run([checked for _, checked in valid])
        for message, _ in valid:
            receiver.complete(message)
        for message, exc in poison:
            receiver.dead_letter(message, reason=type(exc).__name__, description=str(exc)[:DESCRIPTION_LIMIT])
            log.error(
                "message %s dead-lettered in Service Bus: %s: %s", message.message_id, type(exc).__name__, exc
            )
        BRIDGE_MESSAGES.labels(BRIDGE, "handed_over").inc(len(valid))
        BRIDGE_MESSAGES.labels(BRIDGE, "dead_lettered").inc(len(poison))

    def _wait_until_run(self, events: list[Checked]) -> None:
        # a natural route keeps no ledger row to watch: its batches are handed over in order only
        watched = [(e.route.name, e.key) for e in events if e.route.idempotency is not Idempotency.NATURAL]
        waited = 0.0
        while left := self._effects.unsettled(watched):
            if waited >= RUN_WAIT_LOG and waited - EFFECT_POLL < RUN_WAIT_LOG:
                log.info("session batch: waiting for %d events to run before the next", len(left))
            time.sleep(EFFECT_POLL)
            waited += EFFECT_POLL


@contextmanager
def locks_renewed(receiver: Receiver, messages: list[Any]) -> Iterator[None]:
    """Renew the batch's locks while it is in hand, once half of the lock time has passed.

    Most hand-overs take milliseconds and never renew; AutoLockRenewer would watch every message
    from a thread pool and cost the bridge two thirds of its throughput.
    """
    lock_left = lock_seconds_left(messages[0]) if messages else None
    if lock_left is None:
        yield
        return
    done = threading.Event()

    def renew() -> None:
        while not done.wait(max(0.2, lock_left / 2)):
            for message in messages:
                if done.is_set():
                    return
                receiver.renew_lock(message)  # False when settled meanwhile, or the lock is lost
            log.info("renewed the locks of a batch of %d still being handed over", len(messages))

    renewing = threading.Thread(target=renew, name="lock-renewal", daemon=True)
    renewing.start()
    try:
        yield
    finally:
        done.set()
        renewing.join()
