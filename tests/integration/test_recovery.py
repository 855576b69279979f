"""A dead worker's messages go to another worker within seconds; a live worker's never do.

Every setting at its production default: the visibility timeout and FLEET_ETA_MAX the other
integration tests lower are taken out of the environment here.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import datetime

import pytest

from infra.settings import Settings
from tests.integration.conftest import EVERY_BROKER, FleetUnderTest
from tests.integration.helpers import deposit, flaky
from tests.support.processes import FleetProcess, wait_until
from workers.status import queue_depths

pytestmark = EVERY_BROKER

RECEIVED = re.compile(r"Task \S+\[([0-9a-f-]{36})\] received")
RECEIVED_AT = re.compile(r"^(\S+ \S+) INFO celery\.worker\.strategy: Task \S+ received", re.MULTILINE)


@pytest.fixture
def fleet_env(fleet_env: dict[str, str]) -> dict[str, str]:
    """The integration tests' settings, less those that are not production defaults."""
    return {k: v for k, v in fleet_env.items() if k not in ("FLEET_VISIBILITY_TIMEOUT", "FLEET_ETA_MAX")}


def received(worker: FleetProcess) -> list[str]:
    """The ids of the messages a worker took, in its log (Celery logs each one it receives)."""
    return RECEIVED.findall(worker.log())


def last_received_at(worker: FleetProcess) -> float:
    """When the worker took its last message, from its log's (local) time stamps."""
    stamp = RECEIVED_AT.findall(worker.log())[-1]
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def test_a_killed_workers_running_and_reserved_messages_take_effect_once_within_a_minute(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    assert fut.runtime.settings.visibility_timeout == Settings.model_fields["visibility_timeout"].default
    queue = fut.runtime.settings.queue_name("fleet.demo")
    first = fut.start_worker(concurrency=2)  # runs 2 at a time and holds the rest
    events = [deposit(f"held-{n}", work_ms=6000) for n in range(10)]
    for event in events:
        fut.fleet.publisher.publish([event])
    wait_until(lambda: queue_depths(fut.runtime)[queue] == 0, timeout=30, what="all 10 taken")

    first.kill()
    killed, killed_at = time.monotonic(), time.time()
    done = len(fut.deposits())
    assert done <= 4, "the first worker must die holding running and reserved messages"
    second = fut.start_worker(concurrency=4)
    wait_until(lambda: len(fut.deposits()) == 10, timeout=60, what="all 10 deposits within 60 s of the kill")
    recovered = time.monotonic() - killed
    taken = last_received_at(second) - killed_at
    broker = fut.runtime.settings.broker_url.split(":")[0]
    print(
        f"\n{broker}: {10 - done} held by the killed worker, taken by the other {taken:.1f} s "
        f"after the kill, all in effect after {recovered:.1f} s"
    )
    assert len(received(second)) == 10 - done, "the other worker took every message the first held"
    assert taken <= 30

    assert set(fut.deposits()) == {event.id for event in events}
    assert max(fut.deposits().values()) == 1
    assert fut.letters() == []
    assert second.alive()


def test_a_live_workers_long_prefetched_and_countdown_messages_never_go_to_another_worker(
    fleet_under_test: FleetUnderTest, rabbitmq_queue_type: str
) -> None:
    if rabbitmq_queue_type == "quorum":
        pytest.skip(
            "on quorum queues a countdown waits in RabbitMQ (native delayed delivery), held by no worker"
        )
    fut = fleet_under_test
    lease = fut.runtime.settings.visibility_timeout
    assert lease == Settings.model_fields["visibility_timeout"].default
    queue = fut.runtime.settings.queue_name("fleet.demo")
    first = fut.start_worker(concurrency=1)
    # Fails once with a countdown of 2+ leases, which this worker then holds; a task of 3 leases;
    # two messages prefetched behind it, waiting as long.
    fut.fleet.publisher.publish([flaky("waits", fail_times=1, retry_after=2.25 * lease)])
    fut.fleet.publisher.publish([deposit("long", work_ms=3000 * lease)])
    fut.fleet.publisher.publish([deposit("behind-1")])
    fut.fleet.publisher.publish([deposit("behind-2")])
    wait_until(lambda: len(received(first)) == 5, timeout=30, what="4 messages and the retry taken")
    assert queue_depths(fut.runtime)[queue] == 0
    second = fut.start_worker(concurrency=1)

    wait_until(lambda: len(fut.deposits()) == 4, timeout=3.5 * lease + 60, what="the 4 deposits")
    assert set(fut.deposits()) == {"waits", "long", "behind-1", "behind-2"}
    assert max(fut.deposits().values()) == 1
    assert received(second) == [], "the second worker took a message the first still held"
    assert max(Counter(received(first)).values()) == 1, "a message came back to its own worker"
    assert first.alive() and second.alive()
