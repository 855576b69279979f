"""`fleet bridge redis-stream`: from a Redis stream's consumer group to the fleet's queues.

Each turn takes a batch (entries idle past the claim threshold first: a dead bridge's, or ours
after a failed hand-over; then new entries), hands the valid events over, dead-letters the poison
ones in the fleet's DLQ, and only then `XACK`s the batch. A crash anywhere before the `XACK`
leaves the batch pending, to be claimed again: events may reach the queues twice, and the
ledger makes the second a no-op. A transport or broker failure leaves the batch pending too,
and the loop waits with backoff before it goes on.
"""

from __future__ import annotations

import logging
import threading
import time

from handlers.errors import PermanentError
from infra.dead_letters import SqlDeadLetters
from infra.failures import INFRASTRUCTURE_FAILURES
from infra.metrics.bridges import BRIDGE_CONNECTED, BRIDGE_MESSAGES
from infra.transports.redis_stream import RedisStreamGroup, StreamEntry
from workers.bridges.handover import Checked, HandOver, poison_letter

log = logging.getLogger("fleet.bridge.redis_stream")
BRIDGE = "redis-stream"
CLAIM_EVERY = 1.0  # seconds between scans of the pending list; claiming is cheap, staleness is not
FORGET_CONSUMERS_IDLE_MS = 3600_000
BACKOFF_MAX = 30.0


class RedisStreamBridge:
    def __init__(self, group: RedisStreamGroup, hand_over: HandOver, dead_letters: SqlDeadLetters) -> None:
        self._group = group
        self._hand_over = hand_over
        self._dead_letters = dead_letters
        self._next_claim = 0.0
        self._claim_pending = True

    def run(self, stop: threading.Event) -> None:
        """Bridge until `stop` is set; a batch in progress is finished first."""
        backoff = 0.5
        connected = BRIDGE_CONNECTED.labels(BRIDGE)
        connected.set(0)
        while not stop.is_set():
            try:
                self._group.ensure()
                connected.set(1)
                log.info("bridging stream %s to the fleet's queues", self._group.stream)
                while not stop.is_set():
                    self.turn()
                    backoff = 0.5
            except INFRASTRUCTURE_FAILURES as exc:
                connected.set(0)
                log.warning(
                    "stream bridge interrupted (%s: %s); batch left pending, retrying in %.1fs",
                    type(exc).__name__,
                    exc,
                    backoff,
                )
                stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
        connected.set(0)

    def turn(self) -> int:
        """One batch: claim or read, hand over, dead-letter, acknowledge; returns its size."""
        entries: list[StreamEntry] = []
        if self._claim_pending or time.monotonic() >= self._next_claim:
            entries, done = self._group.claim()
            self._claim_pending = not done
            if done:
                self._next_claim = time.monotonic() + CLAIM_EVERY
                for name in self._group.forget_idle_consumers(FORGET_CONSUMERS_IDLE_MS):
                    log.info("forgot idle consumer %s", name)
            if entries:
                log.info("claimed %d entries left pending past the idle threshold", len(entries))
        if not entries:
            entries = self._group.read()
        if entries:
            self.process(entries)
        return len(entries)

    def process(self, entries: list[StreamEntry]) -> None:
        valid: list[Checked] = []
        poison: list[tuple[StreamEntry, PermanentError]] = []
        for entry in entries:
            checked = self._hand_over.check(entry.body, entry.traceparent)
            if isinstance(checked, Checked):
                valid.append(checked)
            else:
                poison.append((entry, checked))
        if valid:
            self._hand_over.send(valid)
        for entry, exc in poison:
            ref = f"{self._group.stream}/{entry.entry_id.decode()}"
            letter = poison_letter(BRIDGE, self._group.stream, ref, entry.body, exc)
            self._dead_letters.add(letter)
            log.error("stream entry %s dead-lettered: %s: %s", ref, type(exc).__name__, exc)
        self._group.ack([entry.entry_id for entry in entries])
        BRIDGE_MESSAGES.labels(BRIDGE, "handed_over").inc(len(valid))
        BRIDGE_MESSAGES.labels(BRIDGE, "dead_lettered").inc(len(poison))
