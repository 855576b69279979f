"""`fleet beat` and `fleet schedules list|pause|resume|run|history`: the scheduled jobs."""

from __future__ import annotations

import functools
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from infra.schedules.state import ScheduleState
from schedules.beat import BEAT_SCHEDULE
from schedules.jobs import Job, ScheduleError, load_jobs
from schedules.runs import RUN_TASK, run_message
from workers.commands.context import Context, pass_context

if TYPE_CHECKING:
    from workers.bootstrap import Runtime


def scheduled_jobs(runtime: Runtime, *, check_targets: bool = True) -> list[Job]:
    """The code's beat entries and the configured ones (`FLEET_SCHEDULES`), checked; with
    `check_targets`, each task and event type must exist (this finalizes the Celery app)."""
    try:
        jobs = load_jobs(BEAT_SCHEDULE, runtime.settings.schedules)
    except ScheduleError as exc:
        raise click.ClickException(f"invalid schedule: {exc}") from None
    if not check_targets:
        return jobs
    known_types = {route.type for route in runtime.registry.routes()}
    unknown = [
        f"  {job.name}: no task {job.task!r}" if job.task else f"  {job.name}: no event type {job.publish!r}"
        for job in jobs
        if (job.task and job.task not in runtime.app.tasks)
        or (job.publish and job.publish not in known_types)
    ]
    if unknown:
        raise click.ClickException("invalid schedules:\n" + "\n".join(unknown))
    return jobs


def schedule_state(runtime: Runtime) -> ScheduleState:
    return ScheduleState(runtime.fleet().redis, runtime.settings.key_prefix)


def run_beat(runtime: Runtime) -> None:
    """Celery beat with the leader-lock scheduler: only the beat holding the lock fires jobs."""
    from infra.schedules.leader import LeaderScheduler

    jobs = scheduled_jobs(runtime)
    logging.getLogger("fleet").info("beat on %s: %d jobs", runtime.describe(), len(jobs))
    scheduler = functools.partial(
        LeaderScheduler,
        jobs=jobs,
        state=schedule_state(runtime),
        lock_timeout=runtime.settings.beat_lock_timeout,
        queue_prefix=runtime.settings.queue_prefix,
    )
    # Celery takes a scheduler class or its dotted name; a partial (called like the class) carries
    # the composition root's Redis state and settings, which a dotted name could not.
    beat = runtime.app.Beat(scheduler=scheduler, loglevel=runtime.settings.log_level)  # type: ignore[arg-type]
    beat.run()


@click.group("schedules")
def schedules() -> None:
    """List, pause, resume and run the scheduled jobs."""


def _when(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S") if timestamp else "-"


def _job(runtime: Runtime, name: str) -> Job:
    for job in scheduled_jobs(runtime):
        if job.name == name:
            return job
    raise click.ClickException(f"no scheduled job {name!r}; `fleet schedules list` shows them")


@schedules.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def list_(ctx: Context, as_json: bool) -> None:
    """Every job: when it runs, its policy, whether paused or running, its last outcome."""
    jobs = scheduled_jobs(ctx.runtime)
    state = schedule_state(ctx.runtime)
    statuses = state.status([job.name for job in jobs])
    runs = state.runs()
    if as_json:
        rows = [
            {
                **status.__dict__,
                "schedule": job.describe(),
                "runs": {outcome: n for (name, outcome), n in runs.items() if name == job.name},
            }
            for job, status in zip(jobs, statuses, strict=True)
        ]
        click.echo(json.dumps({"leader": state.leader(), "jobs": rows}, indent=2))
        return
    click.echo(f"beat leader: {state.leader() or 'none'}")
    for job, status in zip(jobs, statuses, strict=True):
        flags = ("paused " if status.paused else "") + ("running" if status.running else "")
        click.echo(
            f"{job.name:<28} {flags:<15} last ok {_when(status.last_success)}  "
            f"last {status.last_outcome or '-'}  {job.describe()}"
        )
        if status.last_error:
            click.echo(f"{'':<28} error: {status.last_error[:100]}")


@schedules.command()
@click.argument("name")
@pass_context
def pause(ctx: Context, name: str) -> None:
    """Stop firing a job until it is resumed (its slots meanwhile are skipped, not caught up)."""
    _job(ctx.runtime, name)
    schedule_state(ctx.runtime).set_paused(name, True)
    ctx.record("schedules.pause", name, "paused")
    click.echo(f"{name}: paused")


@schedules.command()
@click.argument("name")
@pass_context
def resume(ctx: Context, name: str) -> None:
    """Fire a paused job again from its next slot."""
    _job(ctx.runtime, name)
    schedule_state(ctx.runtime).set_paused(name, False)
    ctx.record("schedules.resume", name, "resumed")
    click.echo(f"{name}: resumed")


@schedules.command()
@click.argument("name")
@pass_context
def run(ctx: Context, name: str) -> None:
    """Run a job once now, even if paused (never beside a run still going, if its overlap is skip)."""
    job = _job(ctx.runtime, name)
    message = run_message(
        job,
        slot=f"manual-{uuid.uuid4().hex[:8]}",
        manual=True,
        queue_prefix=ctx.runtime.settings.queue_prefix,
    )
    ctx.runtime.app.send_task(RUN_TASK, **message)
    ctx.record("schedules.run", name, f"sent ({message['kwargs']['slot']})")
    click.echo(f"{name}: sent ({message['kwargs']['slot']})")


@schedules.command()
@click.argument("name")
@click.option("--limit", default=20, show_default=True)
@pass_context
def history(ctx: Context, name: str, limit: int) -> None:
    """A job's last runs, newest first: slot, start, duration, outcome."""
    _job(ctx.runtime, name)
    for entry in schedule_state(ctx.runtime).history(name)[:limit]:
        click.echo(
            f"{entry['slot']:<24} started {_when(entry['started'])}  "
            f"{entry['finished'] - entry['started']:7.2f}s  {entry['outcome']}"
        )
