"""`fleet orders show ID`: an order's saga timeline, step by step."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from workers.commands.context import Context, pass_context


@click.group("orders")
def orders() -> None:
    """Look at orders and their sagas."""


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@orders.command("show")
@click.argument("order_id")
@pass_context
def show(ctx: Context, order_id: str) -> None:
    """Print ORDER_ID's state and each step of its saga: time, step, outcome, event, detail."""
    from infra.orders.store import timeline

    order, entries = timeline(ctx.runtime.fleet().engine, order_id)
    if order is None:
        raise click.ClickException(f"no order {order_id!r}")
    click.echo(
        f"order {order.order_id}  customer {order.customer_id}  {order.status}  "
        f"{order.amount} {order.currency}"
        + (f"  charge {order.charge_id}" if order.charge_id else "")
        + (f"  reason: {order.reason}" if order.reason else "")
    )
    for entry in entries:
        click.echo(
            f"  {_when(entry.at)}  {entry.step:<9} {entry.outcome:<16} {entry.event_type:<26} "
            f"{entry.event_id}" + (f"  {entry.detail}" if entry.detail else "")
        )
