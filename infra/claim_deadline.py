"""The claim deadline: a process running a claimed event dies before the claim's lease ends.

A claim (engine/effects.py) holds its event for a lease; past it, another message may claim and
run the event too. Each claimed event gets its own budget (0.9 x the route's lease, from the
moment it was claimed), so a message of many events is never cut short for their sum, and one
event that outruns its budget kills its process as Celery's hard time limit would (SIGKILL): the
broker redelivers the message and the attempt record counts the lost run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator

log = logging.getLogger("fleet.claims")


@contextlib.contextmanager
def claim_deadline(seconds: float, what: str) -> Iterator[None]:
    """Kill this process unless the block ends within `seconds`."""
    timer = threading.Timer(seconds, _outran, args=(seconds, what))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _outran(seconds: float, what: str) -> None:
    log.critical(
        "%s ran past its claim's budget of %.1fs; killing the process before its lease ends", what, seconds
    )
    os.kill(os.getpid(), signal.SIGKILL)
