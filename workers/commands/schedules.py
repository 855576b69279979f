"""`fleet beat` and `fleet schedules list|pause|resume|run|history|add|set|remove`: the scheduled jobs."""

from __future__ import annotations

import functools
import getpass
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import click

from schedules.jobs import Job, ScheduleError
from schedules.runs import RUN_TASK, run_message
from workers.commands.context import CLI_ROLE, Context, pass_context
from workers.schedules import (
    UnknownSchedule,
    change_schedule,
    configured_entries,
    jobs_in_force,
    schedule_state,
    schedule_store,
)

if TYPE_CHECKING:
    from workers.bootstrap import Runtime


def scheduled_jobs(runtime: Runtime) -> list[Job]:
    """The jobs in force (code, `FLEET_SCHEDULES`, runtime schedules), each task and event type
    checked to exist (this finalizes the Celery app)."""
    try:
        return jobs_in_force(runtime)
    except ScheduleError as exc:
        raise click.ClickException(f"invalid schedule: {exc}") from None


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
        reload=lambda: jobs_in_force(runtime),
        version=schedule_store(runtime).version,
    )
    # Celery takes a scheduler class or its dotted name; a partial (called like the class) carries
    # the composition root's Redis state and settings, which a dotted name could not.
    beat = runtime.app.Beat(scheduler=scheduler, loglevel=runtime.settings.log_level)  # type: ignore[arg-type]
    beat.run()


@click.group("schedules")
def schedules() -> None:
    """List, pause, resume and run the scheduled jobs; add, change and remove them while beat runs."""


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


def _entry_options(f: Any) -> Any:
    for option in reversed(
        [
            click.option("--publish", "publish", metavar="EVENT_TYPE", help="Publish this event type."),
            click.option("--data", "data", metavar="JSON", help="The published event's data."),
            click.option("--task", "task", metavar="TASK", help="Call this task (by its name)."),
            click.option("--every", type=float, metavar="SECONDS", help="Run every so many seconds."),
            click.option("--cron", metavar="LINE", help="A cron line, e.g. '0 8 * * 1-5 Europe/Amsterdam'."),
            click.option("--tz", metavar="ZONE", help="The cron line's time zone (default UTC)."),
            click.option("--overlap", type=click.Choice(["skip", "allow"])),
            click.option("--timeout", type=float, metavar="SECONDS"),
            click.option("--catch-up/--no-catch-up", "catch_up", default=None),
            click.option("--entry", "entry_json", metavar="JSON", help="Other keys, as in FLEET_SCHEDULES."),
        ]
    ):
        f = option(f)
    return f


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"{what} is not JSON: {exc}") from None


def _entry(base: dict[str, Any], entry_json: str | None, **options: Any) -> dict[str, Any]:
    """`base` with the given options; a new `when` (every, cron) or `what` (task, publish) replaces
    the old one."""
    entry = dict(base)
    if entry_json is not None:
        extra = _json(entry_json, "--entry")
        if not isinstance(extra, dict):
            raise click.BadParameter("--entry is a JSON object")
        entry.update(extra)
    given = {key: value for key, value in options.items() if value is not None}
    if "data" in given:
        given["data"] = _json(given["data"], "--data")
    for key, replaced in (("every", ("cron", "tz", "schedule")), ("cron", ("every", "schedule"))):
        if key in given:
            for old in replaced:
                entry.pop(old, None)
    for key, replaced in (("task", ("publish", "data")), ("publish", ("task", "args", "kwargs"))):
        if key in given:
            for old in replaced:
                entry.pop(old, None)
    entry.update(given)
    return entry


def _change(
    ctx: Context, change: Literal["add", "set", "remove"], name: str, entry: dict[str, Any] | None
) -> Job | None:
    """Stored with its audit entry, under the OS user who ran the command."""
    try:
        return change_schedule(ctx.runtime, change, name, entry, actor=getpass.getuser(), role=CLI_ROLE)
    except UnknownSchedule as exc:
        raise click.ClickException(f"{exc}; `fleet schedules list` shows them") from None
    except ScheduleError as exc:
        raise click.ClickException(str(exc)) from None


@schedules.command()
@click.argument("name")
@_entry_options
@pass_context
def add(ctx: Context, /, name: str, entry_json: str | None, **options: Any) -> None:
    """Add a job while beat runs (kept across restarts), e.g.
    `fleet schedules add nightly --publish report.requested --cron '0 3 * * * Europe/Amsterdam'`."""
    job = _change(ctx, "add", name, _entry({}, entry_json, **options))
    click.echo(f"{name}: added ({job.describe() if job else ''})")


@schedules.command("set")
@click.argument("name")
@_entry_options
@pass_context
def set_(ctx: Context, /, name: str, entry_json: str | None, **options: Any) -> None:
    """Change a configured job (added at runtime or from FLEET_SCHEDULES); keys not given stay."""
    current = configured_entries(ctx.runtime).get(name, {})
    job = _change(ctx, "set", name, _entry(current, entry_json, **options))
    click.echo(f"{name}: changed ({job.describe() if job else ''})")


@schedules.command()
@click.argument("name")
@pass_context
def remove(ctx: Context, name: str) -> None:
    """Remove a configured job (one from FLEET_SCHEDULES stays removed across restarts)."""
    _change(ctx, "remove", name, None)
    click.echo(f"{name}: removed")
