"""`fleet events`: the event types the fleet takes, as a table, as AsyncAPI, and their released
data schemas (docs/event-contracts.md)."""

from __future__ import annotations

import json

import click

from handlers import compatibility
from handlers.contracts import schema_uri
from workers.asyncapi import asyncapi_document
from workers.commands.context import Context, pass_context


@click.group("events")
def events() -> None:
    """The event types: their routes, schemas and contracts."""


@events.command("list")
@pass_context
def list_types(ctx: Context) -> None:
    """Print each event type: queue, task, idempotency, attempts, data model and schema."""
    routes = sorted(ctx.runtime.registry.routes(), key=lambda route: route.type)
    rows = [("TYPE", "QUEUE", "TASK", "IDEMPOTENCY", "ATTEMPTS", "DATA", "DATASCHEMA")]
    for route in routes:
        model = route.data.__name__ if route.data is not None else "(any)"
        rows.append(
            (
                route.type,
                route.queue,
                route.task,
                str(route.idempotency),
                str(route.retry.max_attempts),
                model,
                schema_uri(route) or "-",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@events.command("schema")
@pass_context
def schema(ctx: Context) -> None:
    """Print the fleet's AsyncAPI 3.0 document (what `fleet web` serves at /asyncapi.json)."""
    runtime = ctx.runtime
    click.echo(json.dumps(asyncapi_document(runtime.registry.routes(), runtime.settings), indent=2))


@events.command("release")
@click.option("--check", is_flag=True, help="Only say what breaks its released schema; write nothing.")
@pass_context
def release(ctx: Context, check: bool) -> None:
    """Write each modelled type's schema as released (<domain>/schemas/<type>.v<n>.json).

    A change that breaks a released schema is refused: bump the route's data_version first.
    """
    routes = [route for route in ctx.runtime.registry.routes() if route.data is not None]
    problems = [problem for route in routes for problem in compatibility.check(route)]
    breaking = [problem for problem in problems if "is not released" not in problem]
    if breaking:
        raise click.ClickException("breaks released schemas:\n" + "\n".join(f"  {p}" for p in breaking))
    if check:
        if problems:
            raise click.ClickException("\n".join(problems))
        click.echo(f"{len(routes)} schemas hold")
        return
    for route in routes:
        click.echo(compatibility.release(route))
