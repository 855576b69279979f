"""`fleet keys`: API keys of the events API (created, listed, revoked)."""

from __future__ import annotations

import json

import click

from workers.commands.context import Context, pass_context


@click.group()
def keys() -> None:
    """API keys for POST /events."""


@keys.command("create")
@click.argument("name")
@click.option(
    "--type",
    "event_types",
    multiple=True,
    required=True,
    help="An event type the key may publish; a pattern like 'demo.*' allowed. Repeatable.",
)
@pass_context
def create(ctx: Context, name: str, event_types: tuple[str, ...]) -> None:
    """Create a key; prints the token once (only its hash is stored)."""
    key, token = ctx.runtime.fleet().ingress.api_keys.create(name, event_types)
    click.echo(f"created key {key.id} ({name}) for {', '.join(key.event_types)}", err=True)
    click.echo(token)


@keys.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def list_keys(ctx: Context, include_revoked: bool, as_json: bool) -> None:
    """List keys (never their secrets)."""
    found = ctx.runtime.fleet().ingress.api_keys.list(include_revoked=include_revoked)
    if as_json:
        rows = [
            {
                "id": key.id,
                "name": key.name,
                "event_types": list(key.event_types),
                "created_at": key.created_at.isoformat(),
                "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
            }
            for key in found
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    for key in found:
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        types = ",".join(key.event_types)
        click.echo(f"{key.id}  {key.name:<24} {state:<24} {key.created_at:%Y-%m-%d %H:%M}  {types}")


@keys.command("revoke")
@click.argument("key_id")
@pass_context
def revoke(ctx: Context, key_id: str) -> None:
    """Revoke a key; the web process refuses it within FLEET_API_KEY_CACHE_SECONDS."""
    if not ctx.runtime.fleet().ingress.api_keys.revoke(key_id):
        raise click.ClickException(f"no active key {key_id}")
    click.echo(f"revoked {key_id}")
