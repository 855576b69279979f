"""The task every scheduled run goes through, on a worker: pause check, overlap guard, timeout,
then the job's own task (called in this process) or its event (published), and the outcome.

A run that fails or times out is recorded, not retried: the job's next slot is its retry.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded

from handlers.envelope import new_event
from schedules.jobs import Job
from schedules.state import ScheduleState

log = logging.getLogger("fleet.schedules")
RUN_TASK = "fleet.schedules.run"
HARD_LIMIT_GRACE = 10.0
"""Seconds past the soft time limit before the pool process is killed outright."""


def run_message(job: Job, *, slot: str, manual: bool = False, queue_prefix: str = "") -> dict[str, Any]:
    """The `send_task` arguments of one run of `job`."""
    message: dict[str, Any] = {
        "kwargs": {
            "job": job.name,
            "slot": slot,
            "overlap": job.overlap,
            "timeout": job.timeout,
            "manual": manual,
            "task": job.task,
            "args": list(job.args),
            "kwargs": job.kwargs,
            "publish": job.publish,
            "data": job.data,
        },
        # A run still queued when the next slot comes is pointless: that slot runs the job.
        "expires": job.expires if job.expires is not None else max(30.0, job.interval),
        "soft_time_limit": job.timeout,
        "time_limit": job.timeout + HARD_LIMIT_GRACE,
    }
    if job.queue:
        message["queue"] = queue_prefix + job.queue
    return message


def register_schedule_tasks(app: Celery, fleet: Callable[[], Any]) -> None:
    @app.task(name=RUN_TASK, bind=True, ignore_result=True, acks_late=True)
    def run_scheduled(
        self: Task[Any, Any],
        *,
        job: str,
        slot: str,
        overlap: str = "skip",
        timeout: float = 60.0,
        manual: bool = False,
        task: str | None = None,
        args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        publish: str | None = None,
        data: Any = None,
    ) -> str:
        container = fleet()
        state = ScheduleState(container.redis, container.settings.key_prefix)
        if not manual and state.is_paused(job):
            state.count(job, "skipped_paused")
            return "skipped_paused"
        run_id = str(self.request.id or uuid.uuid4())
        if not state.start_run(job, run_id, timeout, exclusive=overlap == "skip"):
            log.info("schedule %s: slot %s skipped, the last run is still going", job, slot)
            state.count(job, "skipped_overlap")
            return "skipped_overlap"
        started = time.time()
        outcome, error = "succeeded", None
        try:
            if task:
                app.tasks[task](*_with_slot(args or [], slot), **_with_slot(kwargs or {}, slot))
            else:
                assert publish is not None
                # One id per slot: should a slot ever be sent twice, its event is a duplicate.
                event_id = f"{job}@{slot}" if not manual else f"{job}@manual-{run_id}"
                container.publisher.publish([new_event(publish, data, source="fleet:schedule", id=event_id)])
        except SoftTimeLimitExceeded:
            outcome, error = "timed_out", f"still running after {timeout:g}s"
            log.error("schedule %s: slot %s timed out after %gs", job, slot, timeout)
        except Exception as exc:
            outcome, error = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("schedule %s: slot %s failed", job, slot)
        state.finish_run(job, run_id, outcome, error, slot=slot, started=started)
        return outcome


def _with_slot(value: Any, slot: str) -> Any:
    """`{slot}` in a task job's string arguments becomes the run's slot, so a run can name it
    (an idempotency key of its own, a cut-off time)."""
    if isinstance(value, str):
        return value.replace("{slot}", slot)
    if isinstance(value, list):
        return [_with_slot(item, slot) for item in value]
    if isinstance(value, dict):
        return {key: _with_slot(item, slot) for key, item in value.items()}
    return value
