"""The schedules page: every scheduled job (schedules/jobs.py) with its last and next run and last
outcome (infra/schedules/state.py, in Redis); run a job now, pause or resume it; add, change or
remove a configured job (infra/schedules/store.py). The same operations as `fleet schedules`."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any, Literal

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from schedules.jobs import Job, ScheduleError
from schedules.runs import RUN_TASK, run_message
from workers.console.auth import User
from workers.console.common import Console, back_to, blocking, operator, viewer
from workers.schedules import (
    UnknownSchedule,
    change_schedule,
    configured_entries,
    jobs_in_force,
    schedule_state,
)

if TYPE_CHECKING:
    from workers.bootstrap import Runtime

ACTIONS = ("run", "pause", "resume")
CHANGES: tuple[Literal["add", "set", "remove"], ...] = ("add", "set", "remove")
DONE = {"add": "added", "set": "changed", "remove": "removed"}


def _jobs(runtime: Runtime) -> dict[str, Job]:
    return {job.name: job for job in jobs_in_force(runtime, check=False)}


def schedule_rows(runtime: Runtime) -> list[dict[str, Any]]:
    jobs = _jobs(runtime)
    entries = configured_entries(runtime)
    now = time.time()
    statuses = schedule_state(runtime).status(list(jobs))
    return [
        {
            "job": job,
            "status": status,
            "what": job.task or f"publish {job.publish}",
            "when": f"every {job.every:g} s"
            if job.every is not None
            else f"cron {job.cron.text if job.cron else ''}",
            "next": None if status.paused else job.next_slot(job.slot_at_or_before(now)),
            # the code's own jobs are not changed from here; configured ones show their entry
            "entry": json.dumps(entries[job.name], sort_keys=True) if job.name in entries else None,
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
    schedule_state(runtime).set_paused(name, action == "pause")
    return f"{action}d"


def _entry(form: FormData) -> dict[str, Any]:
    try:
        entry = json.loads(str(form.get("entry", "")))
    except json.JSONDecodeError as exc:
        raise ScheduleError(f"the entry is not JSON: {exc}") from None
    if not isinstance(entry, dict):
        raise ScheduleError("the entry is a JSON object, with the keys of FLEET_SCHEDULES")
    return entry


def routes(console: Console) -> list[Route]:
    runtime = console.runtime

    @viewer(console)
    async def schedules(request: Request, user: User) -> Response:
        rows = await blocking(schedule_rows, runtime)
        built_in = runtime.beat_schedule
        return console.render(request, "schedules.html", {"schedules": rows, "built_in": built_in})

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

    @operator(console)
    async def schedule_change(request: Request, user: User, form: FormData) -> Response:
        name, change = str(form.get("name", "")).strip(), str(form.get("change", ""))
        if change not in CHANGES:
            return PlainTextResponse(f"change is one of {', '.join(CHANGES)}", status_code=400)
        try:
            entry = _entry(form) if change != "remove" else None
            # stored with its audit entry, in one transaction
            await blocking(change_schedule, runtime, change, name, entry, actor=user.name, role=user.role)
        except UnknownSchedule as exc:
            return PlainTextResponse(str(exc), status_code=404)
        except ScheduleError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        return back_to(request, "/schedules", f"{name}: {DONE[change]}.")

    return [
        Route("/schedules", schedules),
        Route("/schedules/action", schedule_action, methods=["POST"]),
        Route("/schedules/change", schedule_change, methods=["POST"]),
    ]
