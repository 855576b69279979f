"""One run of a job as beat (or an operator) sends it: the stable task name and its arguments."""

from __future__ import annotations

from typing import Any

from schedules.jobs import Job

RUN_TASK = "fleet.schedules.run"
"""The task every scheduled run goes through (tasks/schedules.py)."""
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
