"""`fleet up`: worker, beat and web as child processes of one terminal.

Children run in their own sessions, so Ctrl-C reaches only the supervisor, which then asks each
child to stop with SIGTERM (a warm shutdown for the worker: running tasks finish, prefetched
messages go back to the broker) and waits for them. If a child dies on its own, the others are
stopped too and `fleet up` exits with its code, so a process manager can restart the lot.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from types import FrameType

log = logging.getLogger("fleet.up")
STOP_TIMEOUT = 60.0


def run_all(commands: list[list[str]]) -> int:
    """Run `fleet <args>` for each of `commands` (`["worker"]`, `["bridge", "servicebus"]`)."""
    children = {
        " ".join(args): subprocess.Popen([sys.executable, "-m", "workers", *args], start_new_session=True)
        for args in commands
    }
    stopping = False

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            log.info("stopping (%s): waiting for running work to finish", signal.Signals(signum).name)
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    log.info("fleet up: %s", ", ".join(f"{name} (pid {child.pid})" for name, child in children.items()))
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                log.error("%s exited with %s; stopping the others", name, child.returncode)
                exit_code, stopping = child.returncode or 1, True
                break
        time.sleep(0.2)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for name, child in children.items():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("%s did not stop in %ss; killing it", name, STOP_TIMEOUT)
            child.kill()
            child.wait()
    return exit_code
