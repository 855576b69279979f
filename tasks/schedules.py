"""`fleet.schedules.run`, the task every scheduled run goes through, on a worker: pause check,
overlap guard, timeout, then the job's own task (called in this process) or its event
(published), and the outcome.

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
from infra.schedules.state import ScheduleState
from schedules.runs import RUN_TASK

log = logging.getLogger("fleet.schedules")


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
