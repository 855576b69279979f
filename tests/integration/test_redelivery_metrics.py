"""`fleet_redeliveries_total{queue}`: a worker counts the messages it receives that a worker
SIGKILLed mid-batch held (Redis: restored once their lease expired; RabbitMQ: requeued when its
connection closed), and not the fresh ones it receives beside them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import FleetUnderTest
from tests.integration.helpers import deposit
from tests.integration.test_recovery import received
from tests.support.processes import wait_until
from tests.support.worker_metrics import scrape, series, start_with_metrics
from workers.status import queue_depths

pytestmark = pytest.mark.integration


def test_messages_of_a_killed_worker_are_counted_as_redeliveries_by_the_worker_that_takes_them(
    fleet_under_test: FleetUnderTest, tmp_path: Path
) -> None:
    fut = fleet_under_test
    queue = fut.runtime.settings.queue_name("fleet.demo")
    first = fut.start_worker(concurrency=2)  # runs 2 at a time and holds the rest
    for n in range(10):
        fut.fleet.publisher.publish([deposit(f"held-{n}", work_ms=4000)])
    wait_until(lambda: queue_depths(fut.runtime)[queue] == 0, timeout=30, what="all 10 taken")
    first.kill()  # mid-batch, main process and pool at once: nothing it held was acknowledged

    port = start_with_metrics(fut, tmp_path, concurrency=4)
    second = fut.processes[-1]
    for n in range(3):  # three fresh messages, received beside the held ones
        fut.fleet.publisher.publish([deposit(f"fresh-{n}")])
    wait_until(lambda: len(received(second)) == 13, timeout=90, what="the 10 held messages and 3 fresh ones")
    wait_until(lambda: len(fut.deposits()) == 13, timeout=30, what="the 13 deposits")

    def redeliveries() -> list[float]:
        return series(scrape(port), "fleet_redeliveries_total", queue=queue)

    wait_until(lambda: redeliveries() == [10.0], timeout=10, what="10 redeliveries counted")
    assert max(fut.deposits().values()) == 1
