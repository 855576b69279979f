"""`fleet console ...`: what an administrator needs to set up the operations console."""

from __future__ import annotations

import sys

import click

from workers.console.auth import hash_password


@click.group()
def console() -> None:
    """The operations console at /console on `fleet web`."""


@console.command("hash-password")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the password from the first line of stdin.")
def hash_password_command(from_stdin: bool) -> None:
    """Print a password hash for FLEET_CONSOLE_USERS (name:role:hash)."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.UsageError("the password is empty")
    click.echo(hash_password(password))
