"""The schedules page: every scheduled job (schedules/jobs.py) with its last and next run and last
outcome (infra/schedules/state.py, in Redis); run a job now, pause or resume it, the same way as the
`fleet schedules` commands do."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from infra.schedules.state import ScheduleState
from schedules.beat import BEAT_SCHEDULE
from schedules.jobs import Job, load_jobs
from schedules.runs import RUN_TASK, run_message
from workers.console.auth import User
from workers.console.common import Console, back_to, blocking, operator, viewer

if TYPE_CHECKING:
    from workers.bootstrap import Runtime

ACTIONS = ("run", "pause", "resume")


def _jobs(runtime: Runtime) -> dict[str, Job]:
    return {job.name: job for job in load_jobs(BEAT_SCHEDULE, runtime.settings.schedules)}


def _state(runtime: Runtime) -> ScheduleState:
    return ScheduleState(runtime.fleet().redis, runtime.settings.key_prefix)


def schedule_rows(runtime: Runtime) -> list[dict[str, Any]]:
    jobs = _jobs(runtime)
    now = time.time()
    statuses = _state(runtime).status(list(jobs))
    return [
        {
            "job": job,
            "status": status,
            "what": job.task or f"publish {job.publish}",
            "when": f"every {job.every:g} s"
            if job.every is not None
            else f"cron {job.cron.text if job.cron else ''}",
            "next": None if status.paused else job.next_slot(job.slot_at_or_before(now)),
        }
        for job, status in zip(jobs.values(), statuses, strict=True)
    ]


def _act(runtime: Runtime, name: str, action: str) -> str | None:
    job = _jobs(runtime).get(name)
    if job is None:
        return None
    if action == "run":
        slot = f"console-{uuid.uuid4().hex[:8]}"
        message = run_message(job, slot=slot, manual=True, queue_prefix=runtime.settings.queue_prefix)
        runtime.app.send_task(RUN_TASK, **message)
        return f"sent ({slot})"
    _state(runtime).set_paused(name, action == "pause")
    return f"{action}d"


def routes(console: Console) -> list[Route]:
    runtime = console.runtime

    @viewer(console)
    async def schedules(request: Request, user: User) -> Response:
        rows = await blocking(schedule_rows, runtime)
        return console.render(request, "schedules.html", {"schedules": rows})

    @operator(console)
    async def schedule_action(request: Request, user: User, form: FormData) -> Response:
        name, action = str(form.get("name", "")), str(form.get("action", ""))
        if action not in ACTIONS:
            return PlainTextResponse(f"action is one of {', '.join(ACTIONS)}", status_code=400)
        outcome = await blocking(_act, runtime, name, action)
        if outcome is None:
            return PlainTextResponse(f"no scheduled job {name!r}", status_code=404)
        await console.record(user, f"schedules.{action}", name, outcome)
        return back_to(request, "/schedules", f"{name}: {outcome}.")

    return [Route("/schedules", schedules), Route("/schedules/action", schedule_action, methods=["POST"])]
