"""`fleet bridge ...`: processes that take events from outside transports into the fleet."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
from dataclasses import asdict
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from workers.commands.context import Context, pass_context

if TYPE_CHECKING:
    from infra.transports.servicebus import DeadLettered

log = logging.getLogger("fleet.bridge")


@click.group()
def bridge() -> None:
    """Bridge an outside transport (a Redis stream, Azure Service Bus) to the fleet's queues."""


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            log.info("stopping (%s) once the batch in hand is acknowledged", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    return stop


@bridge.command("redis-stream")
@click.option("--consumer", help="This process's name in the consumer group (default: host-pid).")
@pass_context
def redis_stream(ctx: Context, consumer: str | None) -> None:
    """Consume FLEET_REDIS_STREAM (consumer group FLEET_REDIS_STREAM_GROUP) into the fleet's queues."""
    runtime = ctx.runtime
    name = consumer or f"{socket.gethostname()}-{os.getpid()}"
    settings = runtime.settings
    log.info(
        "redis-stream bridge %s: stream %s, group %s, on %s",
        name,
        settings.redis_stream,
        settings.redis_stream_group,
        runtime.describe(),
    )
    stop = _stop_on_signals()
    runtime.fleet().transports.redis_stream_bridge(name).run(stop)
    log.info("redis-stream bridge %s stopped", name)


@bridge.command("servicebus")
@pass_context
def servicebus(ctx: Context) -> None:
    """Consume FLEET_SERVICEBUS_QUEUE (peek-lock) into the fleet's queues."""
    runtime = ctx.runtime
    settings = runtime.settings
    log.info(
        "servicebus bridge: queue %s%s, on %s",
        settings.servicebus_queue,
        " (sessions)" if settings.servicebus_sessions else "",
        runtime.describe(),
    )
    stop = _stop_on_signals()
    runtime.fleet().transports.servicebus_bridge().run(stop)
    log.info("servicebus bridge stopped")


@bridge.group("servicebus-dlq")
def servicebus_dlq() -> None:
    """The Service Bus queue's dead-letter sub-queue (`fleet dlq` holds the fleet's own)."""


@servicebus_dlq.command("list")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_context
def servicebus_dlq_list(ctx: Context, limit: int, as_json: bool) -> None:
    """Dead-lettered messages, oldest first, without taking them."""
    letters = ctx.runtime.fleet().transports.servicebus_dead_letters.browse(limit)
    if as_json:
        click.echo(json.dumps([_plain(letter) for letter in letters], indent=2))
        return
    for letter in letters:
        click.echo(
            f"{letter.sequence_number:>8}  {letter.message_id[:36]:<36}  {letter.reason}: "
            f"{letter.description[:70]}"
        )


@servicebus_dlq.command("show")
@click.argument("sequence_number", type=int)
@pass_context
def servicebus_dlq_show(ctx: Context, sequence_number: int) -> None:
    """One dead-lettered message: reason, description and body."""
    letters = ctx.runtime.fleet().transports.servicebus_dead_letters.browse(10_000)
    found = [letter for letter in letters if letter.sequence_number == sequence_number]
    if not found:
        raise click.ClickException(f"no dead-lettered message {sequence_number}")
    click.echo(json.dumps(_plain(found[0]), indent=2))


@servicebus_dlq.command("resubmit")
@click.argument("sequence_numbers", type=int, nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Needed to resubmit with no sequence number.")
@pass_context
def servicebus_dlq_resubmit(ctx: Context, sequence_numbers: tuple[int, ...], everything: bool) -> None:
    """Send dead-lettered messages to the queue again (a new message id, the same event), out of the DLQ."""
    if not sequence_numbers and not everything:
        raise click.UsageError("name sequence numbers, or say --all")
    wanted = set(sequence_numbers) if sequence_numbers else None
    done = ctx.runtime.fleet().transports.servicebus_dead_letters.resubmit(wanted)
    click.echo(f"resubmitted {len(done)}")
    for missing in sorted((wanted or set()) - {letter.sequence_number for letter in done}):
        click.echo(f"  not found: {missing}", err=True)


def _plain(letter: DeadLettered) -> dict[str, Any]:
    from infra.dead_letters import readable_body

    fields = asdict(letter)
    fields["body"] = readable_body(letter.body)
    fields["enqueued_at"] = letter.enqueued_at.isoformat() if letter.enqueued_at else None
    return fields
