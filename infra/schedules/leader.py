"""A Celery beat scheduler that is safe to run on several machines: a Redis leader lock.

Every beat ticks about once a second. The one holding `{p}:beat:leader` extends it and fires the
due slots of each job; the others only try to take the lock, which is free at most one lock
timeout after the leader died. Each slot is claimed in Redis under the lock before it is sent
(see `ScheduleState.claim_slot`), so no slot is fired twice, and the standby resumes from the last
slot the leader claimed: with catch-up, the slots of the takeover gap are fired then.

The jobs can change while beat runs (runtime schedules, infra/schedules/store.py): the leader
reloads them when the change counter moves, and every `RELOAD_SECONDS` regardless. A reload that
fails keeps the jobs it had.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
from celery import Celery
from celery.beat import Scheduler

from infra.schedules.state import ScheduleState
from infra.schedules.store import RELOAD_SECONDS
from schedules.jobs import Job
from schedules.runs import RUN_TASK, run_message

log = logging.getLogger("fleet.beat")


class LeaderScheduler(Scheduler):
    """Fires `jobs` while holding the leader lock; stands by otherwise."""

    def __init__(
        self,
        app: Celery,
        *,
        jobs: list[Job],
        state: ScheduleState,
        lock_timeout: float,
        queue_prefix: str = "",
        reload: Callable[[], list[Job]] | None = None,
        version: Callable[[], int] | None = None,
        **kwargs: Any,
    ) -> None:
        self.jobs = jobs
        self._reload = reload
        self._version = version
        self._loaded_version: int | None = None  # the first leading tick reloads
        self._loaded_at = time.monotonic()
        self.queue_prefix = queue_prefix
        self.state = state
        self.lock_timeout = lock_timeout
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.leading = False
        # Tick often enough to extend the lock three times per timeout and to take it over fast.
        self.tick_interval = min(1.0, lock_timeout / 3)
        kwargs.pop("schedule_filename", None)  # nothing on local disk: the state lives in Redis
        kwargs["max_interval"] = 1  # unused: `tick` says how long to sleep
        super().__init__(app, **kwargs)

    def setup_schedule(self) -> None:
        """Celery's own entries are not used: `tick` fires `self.jobs`."""

    def tick(self, *args: Any, **kwargs: Any) -> float:
        try:
            leading = self.state.hold_lock(self.token, self.lock_timeout)
        except redis.RedisError as exc:
            log.warning("beat: Redis unreachable (%s); not firing until it is back", exc)
            self.leading = False
            return self.tick_interval
        if leading != self.leading:
            log.info("beat %s: %s", self.token, "leading, firing jobs" if leading else "standing by")
            self.leading = leading
        if not leading:
            return self.tick_interval
        self._refresh_jobs()
        try:
            next_slot = self._fire_due(time.time())
        except redis.RedisError as exc:
            log.warning("beat: Redis error while firing (%s)", exc)
            return self.tick_interval
        # Wake at the next slot (so a job is not late by a tick), and at least once per tick.
        return max(0.01, min(self.tick_interval, next_slot - time.time()))

    def _refresh_jobs(self) -> None:
        if self._reload is None or self._version is None:
            return
        try:
            version = self._version()
            if version == self._loaded_version and time.monotonic() - self._loaded_at < RELOAD_SECONDS:
                return
            self._loaded_version, self._loaded_at = version, time.monotonic()
            jobs = self._reload()
        except Exception:
            log.exception("beat: could not reload the schedules; firing the %d jobs it had", len(self.jobs))
            return
        before = {job.name: job for job in self.jobs}
        after = {job.name: job for job in jobs}
        changes = [
            f"{'added' if name not in before else 'removed' if name not in after else 'changed'} {name}"
            for name in sorted(before.keys() | after.keys())
            if before.get(name) != after.get(name)
        ]
        if changes:
            log.info("beat: schedules reloaded: %s", ", ".join(changes))
        self.jobs = jobs

    def _fire_due(self, now: float) -> float:
        """Fire what is due; returns when the next slot of any job comes."""
        stored = self.state.last_slots([job.name for job in self.jobs])
        next_slot = now + self.tick_interval
        for job in self.jobs:
            previous, paused = stored[job.name]
            due, missed = job.due_slots(float(previous) if previous else None, now)
            if not due:
                if previous:
                    next_slot = min(next_slot, job.next_slot(float(previous)))
                continue
            next_slot = min(next_slot, job.next_slot(due[-1]))
            last_due = _slot_text(due[-1])
            claimed = self.state.claim_slot(self.token, job.name, previous, last_due)
            if claimed < 0:
                log.info("beat %s: lost the lock; standing by", self.token)
                self.leading = False
                return now + self.tick_interval
            if claimed == 0:
                continue  # another beat fired these slots already
            if missed:
                log.warning("beat: %s missed %d slots while no beat ran (catch-up off)", job.name, missed)
                self.state.count(job.name, "missed", missed)
            if paused:
                self.state.count(job.name, "skipped_paused", len(due))
                continue
            sent = previous
            for slot in due:
                try:
                    self._send(job, slot)
                except Exception:
                    # Give the unsent slots back (if still ours), so the next tick sends them again.
                    log.exception(
                        "beat: could not send %s (slot %s); trying again", job.name, _slot_text(slot)
                    )
                    self.state.claim_slot(self.token, job.name, last_due, sent)
                    break
                sent = _slot_text(slot)
        return next_slot

    def _send(self, job: Job, slot: float) -> None:
        message = run_message(job, slot=_slot_text(slot), queue_prefix=self.queue_prefix)
        log.info("beat: sending %s (slot %s)", job.name, message["kwargs"]["slot"])
        self.app.send_task(RUN_TASK, producer=self.producer, **message)

    def close(self) -> None:
        try:
            if self.leading:
                self.state.release_lock(self.token)  # the standby takes over at once, not after a timeout
                self.leading = False
                log.info("beat %s: released the leader lock", self.token)
        except redis.RedisError:
            log.warning("beat: could not release the leader lock; it expires by itself")
        super().close()

    @property
    def info(self) -> str:
        return f"leader lock on Redis (timeout {self.lock_timeout:g}s), {len(self.jobs)} jobs"


def _slot_text(slot: float) -> str:
    return f"{slot:.3f}"
