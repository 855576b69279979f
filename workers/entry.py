"""The `fleet` entry point: settles where metrics go before anything imports prometheus_client."""

from __future__ import annotations

import atexit
import os
import shutil
import sys

from infra.metrics.directory import ENV, use_multiprocess_dir

SERVING_COMMANDS = frozenset({"worker", "beat", "web", "up", "bridge"})
"""Long-running processes, whose samples are summed across processes. One-shot commands
(`publish`, `dlq`, ...) keep theirs in memory and leave no files behind."""


def main() -> None:
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    if command in SERVING_COMMANDS and not os.environ.get(ENV):
        # Read before the settings are: the choice must precede the first prometheus_client import.
        configured = os.environ.get("FLEET_METRICS_DIR") or None
        path = use_multiprocess_dir(configured)
        if configured is None:
            atexit.register(_remove_if_owner, str(path), os.getpid())
    from workers.cli import main as cli

    cli()


def _remove_if_owner(path: str, owner: int) -> None:
    if os.getpid() == owner:  # a forked pool child runs its parent's atexit hooks too
        shutil.rmtree(path, ignore_errors=True)
