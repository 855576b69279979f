"""What every `fleet` subcommand is handed: the runtime, built on first use, and the audit log."""

from __future__ import annotations

import getpass

import click
import pydantic

from handlers.domains import UnknownDomain
from infra import logs
from infra.audit import SqlAuditLog
from infra.settings import Settings
from workers.bootstrap import Runtime


class Context:
    """Builds the runtime on first use, so `fleet --help` needs no settings."""

    def __init__(self) -> None:
        self._runtime: Runtime | None = None

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            try:
                settings = Settings()
            except pydantic.ValidationError as exc:
                lines = [
                    f"  FLEET_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                    if e["loc"]
                    else f"  {e['msg'].removeprefix('Value error, ')}"
                    for e in exc.errors()
                ]
                raise click.ClickException("invalid settings:\n" + "\n".join(lines)) from None
            logs.configure(settings.log_level, settings.log_format)
            try:
                self._runtime = Runtime(settings)
            except UnknownDomain as exc:
                raise click.ClickException(str(exc)) from None
        return self._runtime

    def record(self, action: str, target: str, detail: str = "") -> None:
        """A change made from the command line goes to the console's audit log, under the OS
        user who ran it (the role column says `cli`)."""
        SqlAuditLog(self.runtime.fleet().engine).record(
            actor=getpass.getuser(), role=CLI_ROLE, action=action, target=target, detail=detail
        )


CLI_ROLE = "cli"
"""The audit log's role for changes made with `fleet` (the console's are viewer/operator)."""

pass_context = click.make_pass_decorator(Context, ensure=True)
