"""The jobs in force, for every process that needs them (beat, the CLI, the console, /metrics):
the code's beat schedule, the `FLEET_SCHEDULES` seed and the runtime schedules over it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from infra.schedules.state import ScheduleState
from infra.schedules.store import SqlSchedules
from schedules.jobs import Job, ScheduleError, load_jobs, unknown_targets, with_overrides

if TYPE_CHECKING:
    from workers.bootstrap import Runtime


def schedule_state(runtime: Runtime) -> ScheduleState:
    return ScheduleState(runtime.fleet().redis, runtime.settings.key_prefix)


def schedule_store(runtime: Runtime) -> SqlSchedules:
    fleet = runtime.fleet()
    return SqlSchedules(fleet.engine, fleet.redis, runtime.settings.key_prefix)


def check_targets(runtime: Runtime, jobs: list[Job]) -> None:
    """Each job's task and event type must exist (this finalizes the Celery app)."""
    known_types = {route.type for route in runtime.registry.routes()}
    if unknown := unknown_targets(jobs, runtime.app.tasks, known_types):
        raise ScheduleError("invalid schedules:\n" + "\n".join(f"  {line}" for line in unknown))


def jobs_in_force(
    runtime: Runtime, *, overrides: dict[str, dict[str, Any] | None] | None = None, check: bool = True
) -> list[Job]:
    """Every job beat fires now, checked (`ScheduleError` names the job at fault); `overrides`
    stands for the stored runtime schedules, to check a change before it is stored."""
    stored = schedule_store(runtime).overrides() if overrides is None else overrides
    jobs = load_jobs(runtime.beat_schedule, with_overrides(runtime.settings.schedules, stored))
    if check:
        check_targets(runtime, jobs)
    return jobs


class UnknownSchedule(ScheduleError):
    """No configured job by that name."""


def configured_entries(runtime: Runtime) -> dict[str, dict[str, Any]]:
    """The entries of every job that may be changed at runtime (all but the code's own)."""
    return with_overrides(runtime.settings.schedules, schedule_store(runtime).overrides())


def change_schedule(
    runtime: Runtime,
    change: Literal["add", "set", "remove"],
    name: str,
    entry: dict[str, Any] | None,
    *,
    actor: str,
    role: str,
) -> Job | None:
    """Add, change (`set`) or remove a configured job, stored durably with its audit entry (by
    `actor` in `role`); beat picks the change up at its next tick. Refused (`ScheduleError`) if it
    would leave any job unable to run."""
    if name in runtime.beat_schedule:
        raise ScheduleError(f"schedule {name!r} is built into the code: pause it instead")
    if not name or len(name) > 200 or any(char.isspace() for char in name):
        raise ScheduleError(f"schedule {name!r}: a name is 1-200 characters without spaces")
    store = schedule_store(runtime)
    stored = store.overrides()
    exists = name in with_overrides(runtime.settings.schedules, stored)
    if change == "add" and exists:
        raise ScheduleError(f"schedule {name!r} exists already: `set` changes it")
    if change != "add" and not exists:
        raise UnknownSchedule(f"no configured schedule {name!r}")
    if change == "remove":
        entry = None
    elif entry is None:
        raise ScheduleError(f"schedule {name!r}: no entry given")
    jobs = jobs_in_force(runtime, overrides={**stored, name: entry})  # the whole set, checked
    store.put(name, entry, actor=actor, role=role, action=f"schedules.{change}")
    return next((job for job in jobs if job.name == name), None)
