"""`fleet graph subscribe|list|renew|delete`: the Microsoft Graph subscriptions the fleet keeps."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import click

from handlers.graph.ports import SubscriptionRequest
from infra.graph.wiring import subscription_requests
from workers.commands.context import Context, pass_context


@click.group("graph")
def graph() -> None:
    """Microsoft Graph subscriptions (stored with their clientState, which the webhook checks)."""


@graph.command("subscribe")
@click.option("--resource", help="e.g. users, groups, users/{id}/mailFolders('inbox')/messages")
@click.option("--change-type", default="created,updated,deleted", show_default=True)
@click.option("--notification-url", help="Default: FLEET_GRAPH_NOTIFICATION_URL.")
@click.option("--lifecycle-url", help="Default: FLEET_GRAPH_LIFECYCLE_URL.")
@click.option(
    "--rich", is_flag=True, help="Rich notifications (resource data encrypted with the app's cert)."
)
@pass_context
def subscribe(
    ctx: Context,
    *,
    resource: str | None,
    change_type: str,
    notification_url: str | None,
    lifecycle_url: str | None,
    rich: bool,
) -> None:
    """Create a subscription, or (without --resource) every one FLEET_GRAPH_SUBSCRIPTIONS names."""
    settings = ctx.runtime.settings
    if resource:
        url = notification_url or settings.graph_notification_url
        if not url:
            raise click.ClickException("give --notification-url or set FLEET_GRAPH_NOTIFICATION_URL")
        requests = [
            SubscriptionRequest(resource, change_type, url, lifecycle_url or settings.graph_lifecycle_url)
        ]
    else:
        try:
            requests = subscription_requests(settings)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        if not requests:
            raise click.ClickException("give --resource or set FLEET_GRAPH_SUBSCRIPTIONS")
    if rich:  # the app's certificate (FLEET_GRAPH_CERTIFICATE_PATH and _ID) is added on create
        requests = [replace(r, include_resource_data=True) for r in requests]
    manager = ctx.runtime.fleet().domains.graph.subscriptions
    for request in requests:
        try:
            sub = manager.create(request)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{sub.id}  {sub.resource}  {sub.change_type}  expires {sub.expires_at.isoformat()}")


@graph.command("list")
@pass_context
def list_subscriptions(ctx: Context) -> None:
    """The stored subscriptions (their secrets are not shown)."""
    now = datetime.now(UTC)
    for sub in ctx.runtime.fleet().domains.graph.subscriptions.stored():
        left = (sub.expires_at - now).total_seconds() / 3600
        click.echo(f"{sub.id}  {sub.status:8}  {sub.resource}  {sub.change_type}  expires in {left:.1f}h")


@graph.command("renew")
@click.argument("ids", nargs=-1)
@pass_context
def renew(ctx: Context, ids: tuple[str, ...]) -> None:
    """Renew the given subscriptions (all active ones without ids) to their maximum lifetime."""
    manager = ctx.runtime.fleet().domains.graph.subscriptions
    targets = ids or tuple(s.id for s in manager.stored() if s.status == "active")
    for subscription_id in targets:
        renewed = manager.renew(subscription_id)
        if renewed is None:
            click.echo(f"{subscription_id}  gone from Graph (marked removed; beat re-creates it)")
        else:
            click.echo(f"{subscription_id}  expires {renewed.expires_at.isoformat()}")


@graph.command("delete")
@click.argument("ids", nargs=-1, required=True)
@pass_context
def delete(ctx: Context, ids: tuple[str, ...]) -> None:
    """Delete subscriptions in Graph and from the database."""
    manager = ctx.runtime.fleet().domains.graph.subscriptions
    for subscription_id in ids:
        manager.delete(subscription_id)
        click.echo(f"{subscription_id}  deleted")
