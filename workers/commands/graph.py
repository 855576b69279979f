"""`fleet graph subscribe|adopt|list|renew|delete`: the Microsoft Graph subscriptions the fleet keeps."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import click

from handlers.graph.ports import Subscription, SubscriptionRequest
from infra.graph.wiring import subscription_requests
from workers.commands.context import Context, pass_context

MAX_CLIENT_STATE = 128
"""Graph's limit on a subscription's clientState."""


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


def _expiry(ctx: click.Context, param: click.Parameter, value: str) -> datetime:
    try:
        expires = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("an ISO 8601 time, e.g. 2026-12-24T10:00:00Z") from None
    if expires.tzinfo is None:
        raise click.BadParameter("give the UTC offset (Z or +01:00), as Graph's expirationDateTime does")
    if expires <= datetime.now(UTC):
        raise click.BadParameter("already past: an expired subscription cannot be adopted, subscribe anew")
    return expires


@graph.command("adopt")
@click.option("--id", "subscription_id", required=True, help="The subscription's id in Graph.")
@click.option(
    "--client-state", required=True, help="The clientState it was created with (Graph never shows it)."
)
@click.option("--resource", required=True, help="Its resource, as it was created.")
@click.option("--expires", required=True, callback=_expiry, help="Its expirationDateTime (ISO 8601).")
@click.option("--change-type", default="created,updated,deleted", show_default=True)
@click.option("--notification-url", help="Default: FLEET_GRAPH_NOTIFICATION_URL.")
@click.option("--lifecycle-url", help="Default: FLEET_GRAPH_LIFECYCLE_URL.")
@click.option("--rich", is_flag=True, help="It was created with includeResourceData.")
@pass_context
def adopt(
    ctx: Context,
    *,
    subscription_id: str,
    client_state: str,
    resource: str,
    expires: datetime,
    change_type: str,
    notification_url: str | None,
    lifecycle_url: str | None,
    rich: bool,
) -> None:
    """Record a subscription that exists in Graph already (made by another tool or an earlier
    install), so its notifications are accepted and beat renews it. Graph is not called."""
    settings = ctx.runtime.settings
    url = notification_url or settings.graph_notification_url
    if not url:
        raise click.ClickException("give --notification-url or set FLEET_GRAPH_NOTIFICATION_URL")
    if not 1 <= len(client_state) <= MAX_CLIENT_STATE:
        raise click.BadParameter(
            f"1 to {MAX_CLIENT_STATE} characters, as Graph takes", param_hint="--client-state"
        )
    sub = Subscription(
        id=subscription_id,
        resource=resource,
        change_type=change_type,
        notification_url=url,
        lifecycle_url=lifecycle_url or settings.graph_lifecycle_url,
        client_state=client_state,
        expires_at=expires,
        include_resource_data=rich,
    )
    ctx.runtime.fleet().domains.graph.stored_subscriptions.save(sub)
    click.echo(f"{sub.id}  {sub.resource}  {sub.change_type}  adopted, expires {sub.expires_at.isoformat()}")


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
