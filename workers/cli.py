"""The `fleet` command."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from engine.records import Filter
from handlers.contracts import check_event
from handlers.envelope import Event, new_event, parse_event
from handlers.errors import FleetError, InvalidEvent, PermanentError
from handlers.registry import Registry
from infra.transports import PUBLISH_TARGETS
from workers import worker_hooks
from workers.commands.bridge import bridge
from workers.commands.console import console
from workers.commands.context import Context, pass_context
from workers.commands.events import events
from workers.commands.graph import graph
from workers.commands.keys import keys
from workers.commands.orders import orders
from workers.commands.schedules import schedules


@click.group()
def main() -> None:
    """fleet: domain events in, idempotent handlers out."""


@main.command()
@click.option("-Q", "--queues", help="Comma-separated queues to consume (default: all).")
@click.option("-c", "--concurrency", type=int, help="Pool processes (default: FLEET_WORKER_CONCURRENCY).")
@click.option("-n", "--hostname", help="Worker node name.")
@pass_context
def worker(ctx: Context, queues: str | None, concurrency: int | None, hostname: str | None) -> None:
    """Run a Celery worker for the fleet's queues."""
    runtime = ctx.runtime
    logging.getLogger("fleet").info("worker on %s", runtime.describe())
    argv = ["worker", f"--loglevel={runtime.settings.log_level}", "--without-mingle", "--without-gossip"]
    if runtime.settings.log_format == "json":
        argv.insert(0, "--quiet")  # no banner: every line of the log is a JSON object
        worker_hooks.say_as_json()
    argv += [f"--queues={queues or ','.join(q.name for q in runtime.app.conf.task_queues)}"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
        # The pool size sets the default downstream slots (infra/slots.py) in the pool processes.
        runtime.settings = runtime.settings.model_copy(update={"worker_concurrency": concurrency})
    if hostname:
        argv.append(f"--hostname={hostname}")
    worker_hooks.install(runtime, hostname)
    runtime.app.worker_main(argv)


@main.command()
@pass_context
def beat(ctx: Context) -> None:
    """Run Celery beat with the fleet's schedule; safe on several machines (a leader lock)."""
    from workers.commands.schedules import run_beat

    run_beat(ctx.runtime)


@main.command()
@pass_context
def web(ctx: Context) -> None:
    """Serve the events API, Graph and signed webhooks, health checks, metrics and the operations
    console (at /console)."""
    import gc

    import uvicorn

    from infra.tracing import setup as tracing
    from workers.web import make_web_app

    settings = ctx.runtime.settings
    tracing.configure("fleet-web")
    app = tracing.instrument_asgi(make_web_app(ctx.runtime))
    # What startup built (modules, the Graph SDK's classes) lives as long as the process: kept out
    # of the collector, a full collection no longer stalls requests for a tenth of a second.
    gc.freeze()
    # JSON logs: uvicorn's loggers left to the root logger's JSON handler, not its own text ones.
    logging_config: dict[str, Any] = {"log_config": None} if settings.log_format == "json" else {}
    uvicorn.run(app, host=settings.web_host, port=settings.web_port, log_level="warning", **logging_config)


@main.command()
@pass_context
def up(ctx: Context) -> None:
    """Migrate the database, then run worker, beat, web (and bridges, FLEET_UP_BRIDGES) until Ctrl-C."""
    from infra.migrate import upgrade
    from workers.console.sign_in_link import LOOPBACK, link, new_token
    from workers.supervisor import run_all

    upgrade(ctx.runtime.fleet().engine, locations=ctx.runtime.migrations)
    settings = ctx.runtime.settings
    if not settings.console_users and not settings.console_trusted_header and settings.web_host in LOOPBACK:
        # A newcomer sees the console without configuring users; the web child reads the token.
        token = new_token()
        os.environ["FLEET_CONSOLE_SIGN_IN_TOKEN"] = token
        click.echo(f"console: {link(settings.web_host, settings.web_port, token)}  (signs in once)")
    bridges = [["bridge", name] for name in settings.bridges_for_up]
    sys.exit(run_all([["worker"], ["beat"], ["web"], *bridges]))


@main.group()
def db() -> None:
    """The fleet's database schema."""


@db.command("upgrade")
@pass_context
def db_upgrade(ctx: Context) -> None:
    """Apply the schema migrations: the core's and those of the enabled domains (FLEET_DOMAINS)."""
    from infra.migrate import UnknownRevision, current, upgrade

    engine = ctx.runtime.fleet().engine
    try:
        upgrade(engine, locations=ctx.runtime.migrations)
    except UnknownRevision as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"database at revision {current(engine)}")


@main.command()
@click.argument("event_type", required=False)
@click.option("--data", "data_json", help="The event's data, as JSON.")
@click.option("--source", default="fleet:cli", show_default=True)
@click.option("--id", "event_id", help="The event id (default: a new UUID).")
@click.option("--subject")
@click.option(
    "--file", "path", type=click.File("r"), help="A JSON file with one event, or JSON lines ('-': stdin)."
)
@click.option("--to", "target", type=click.Choice(PUBLISH_TARGETS), default="celery", show_default=True)
@pass_context
def publish(
    ctx: Context,
    event_type: str | None,
    data_json: str | None,
    source: str,
    event_id: str | None,
    subject: str | None,
    path: Any,
    target: str,
) -> None:
    """Publish an event from arguments, or events from a file or stdin (`--file -`).

    All events are checked first; if any is invalid, none is sent and every problem is listed.
    """
    from infra.tracing import setup as tracing

    settings = ctx.runtime.settings
    tracing.configure("fleet-cli")  # its `send` span goes out as the command exits
    fleet = ctx.runtime.fleet()
    if path is not None:
        events, problems = _read_events(path.read(), settings.max_event_bytes, fleet.registry)
    elif event_type:
        try:
            data = json.loads(data_json) if data_json is not None else None
        except json.JSONDecodeError as exc:
            raise click.ClickException(f"--data is not valid JSON: {exc}") from None
        try:
            events, problems = [new_event(event_type, data, source=source, id=event_id, subject=subject)], []
        except InvalidEvent as exc:
            raise click.ClickException(f"invalid event: {exc}") from None
    else:
        raise click.UsageError("give an EVENT_TYPE or --file")
    if path is None and (problem := _contract_problem(fleet.registry, events[0])):
        problems.append(f"  {problem}")
    if problems:
        raise click.ClickException("nothing published:\n" + "\n".join(problems))
    try:
        ids = fleet.publisher_for(target).publish(events)
    except (FleetError, ValueError) as exc:  # ValueError: the target is not configured
        raise click.ClickException(f"nothing published: {exc}") from None
    for event_id_ in ids:
        click.echo(event_id_)


def _contract_problem(registry: Registry, event: Event) -> str | None:
    """Why no route takes the event, or its data breaks the route's model; None when it is fine."""
    try:
        check_event(registry.route_for(event.type), event)
    except PermanentError as exc:
        return str(exc)
    return None


def _read_events(text: str, max_bytes: int, registry: Registry) -> tuple[list[Event], list[str]]:
    stripped = text.strip()
    lines = [stripped] if stripped.startswith("{") and "\n{" not in stripped else text.splitlines()
    events, problems = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = parse_event(line.encode(), max_bytes=max_bytes)
        except InvalidEvent as exc:
            problems.append(f"  line {number}: {exc}")
            continue
        if problem := _contract_problem(registry, event):
            problems.append(f"  line {number}: {problem}")
        events.append(event)
    return events, problems


@main.group()
def dlq() -> None:
    """Browse, replay and purge dead letters."""


def _filter_options(f: Any) -> Any:
    for option in reversed(
        [
            click.option("--type", "event_type", help="Event type."),
            click.option("--handler", help="Handler (task) name."),
            click.option("--fingerprint", help="Failure group."),
            click.option("--since", help="Failed at or after: ISO time or an age like 30m, 2h, 7d."),
            click.option("--until", help="Failed before: ISO time or an age."),
            click.option(
                "--status", default="dead", show_default=True, type=click.Choice(["dead", "replayed", "any"])
            ),
        ]
    ):
        f = option(f)
    return f


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value[-1] in units and value[:-1].isdigit():
        return datetime.now(UTC) - timedelta(seconds=int(value[:-1]) * units[value[-1]])
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither an ISO time nor an age like 30m") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _make_filter(
    ids: tuple[int, ...],
    event_type: str | None,
    handler: str | None,
    fingerprint: str | None,
    since: str | None,
    until: str | None,
    status: str,
) -> Filter:
    return Filter(
        ids=ids,
        event_type=event_type,
        handler=handler,
        fingerprint=fingerprint,
        since=_when(since),
        until=_when(until),
        status=None if status == "any" else status,
    )


@dlq.command("list")
@_filter_options
@click.option("--groups", is_flag=True, help="One line per failure group instead of per letter.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_context
def dlq_list(ctx: Context, /, groups: bool, limit: int, as_json: bool, **filters: Any) -> None:
    """List dead letters, newest first."""
    store = ctx.runtime.fleet().dead_letters
    where = _make_filter((), **filters)
    rows = store.groups(where) if groups else store.find(where, limit=limit)
    if as_json:
        click.echo(json.dumps([_plain(row._mapping) for row in rows], indent=2))
        return
    if groups:
        for row in rows:
            click.echo(
                f"{row.fingerprint}  {row.count:>6}  {row.error_type:<20} {row.handler:<32} "
                f"last {row.last_seen:%Y-%m-%d %H:%M:%S}  {row.example[:60]}"
            )
        return
    for row in rows:
        click.echo(
            f"{row.id:>6}  {row.last_failed_at:%Y-%m-%d %H:%M:%S}  {row.status:<8} {row.event_type:<28} "
            f"{row.event_id[:36]:<36}  x{row.attempts}  {row.error_type}: {row.error_message[:60]}"
        )


@dlq.command("show")
@click.argument("letter_id", type=int)
@pass_context
def dlq_show(ctx: Context, letter_id: int) -> None:
    """Show one dead letter: envelope, error and traceback."""
    row = ctx.runtime.fleet().dead_letters.get(letter_id)
    if row is None:
        raise click.ClickException(f"no dead letter {letter_id}")
    click.echo(json.dumps(_plain(row._mapping), indent=2))


@dlq.command("replay")
@click.argument("letter_ids", type=int, nargs=-1)
@_filter_options
@click.option("--all", "everything", is_flag=True, help="Needed to replay with no id and no filter.")
@pass_context
def dlq_replay(ctx: Context, /, letter_ids: tuple[int, ...], everything: bool, **filters: Any) -> None:
    """Send dead letters again, with the same event ids, from attempt one."""
    from engine.replay import replay

    where = _make_filter(letter_ids, **filters)
    _refuse_unfiltered(where, everything)
    fleet = ctx.runtime.fleet()
    report = replay(fleet.dead_letters, fleet.publisher, where)
    detail = f"replayed {report.replayed}" + (f"; refused {report.refused}" if report.refused else "")
    ctx.record("dead_letters.replay", _audit_target(where), detail)
    click.echo(f"replayed {len(report.replayed)}")
    for letter_id, reason in report.refused.items():
        click.echo(f"  not replayed {letter_id}: {reason}", err=True)


@dlq.command("purge")
@click.argument("letter_ids", type=int, nargs=-1)
@_filter_options
@click.option("--all", "everything", is_flag=True, help="Needed to purge with no id and no filter.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def dlq_purge(
    ctx: Context, /, letter_ids: tuple[int, ...], everything: bool, yes: bool, **filters: Any
) -> None:
    """Delete dead letters for good."""
    where = _make_filter(letter_ids, **filters)
    _refuse_unfiltered(where, everything)
    store = ctx.runtime.fleet().dead_letters
    count = store.count(where)
    if not yes:
        click.confirm(f"delete {count} dead letters for good?", abort=True)
    purged = store.purge(where)
    ctx.record("dead_letters.purge", _audit_target(where), f"purged {purged}")
    click.echo(f"purged {purged}")


def _audit_target(where: Filter) -> str:
    """The letters a command meant, as the audit log names them (`letters [3, 4]`, or the filter)."""
    if where.ids:
        return f"letters {list(where.ids)}"
    named = {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in dataclasses.asdict(where).items()
        if value and name != "ids"
    }
    return "letters where " + json.dumps(named, sort_keys=True)


def _refuse_unfiltered(where: Filter, everything: bool) -> None:
    if not where.narrows and not everything:
        raise click.UsageError("name letter ids or a filter, or say --all")


@main.command()
@click.option("--json", "as_json", is_flag=True)
@pass_context
def status(ctx: Context, as_json: bool) -> None:
    """What is running, queue depths, retries waiting, outbox backlog, DLQ size."""
    from workers.status import collect

    report = collect(ctx.runtime)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    for key, value in report.items():
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for name, item in value.items():
                click.echo(f"  {name}: {item}")
        else:
            click.echo(f"{key}: {value}")


def _plain(mapping: Any) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in dict(mapping).items()
    }


# The other domains' commands, one module each under workers/commands/; add one line here.
_DOMAIN_COMMANDS: tuple[click.Command, ...] = (bridge, console, events, graph, keys, orders, schedules)
for _command in _DOMAIN_COMMANDS:
    main.add_command(_command)
