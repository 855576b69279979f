"""Entries on a Redis queue that are not kombu messages are dead-lettered; the worker goes on."""

from __future__ import annotations

import pytest

from tests.integration.conftest import FleetUnderTest
from tests.integration.helpers import deposit
from tests.support.processes import wait_until

NOT_JSON = b"\xff{not json at all"
NOT_AN_ENVELOPE = b'{"body": "eA==", "headers": {}}'


@pytest.mark.parametrize("broker_url", ["redis"], indirect=True)
def test_stray_entries_on_a_redis_queue_are_dead_lettered_raw_and_the_worker_keeps_consuming(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    worker = fut.start_worker(concurrency=1)
    pid = worker.pid
    queue = fut.runtime.settings.queue_name("fleet.demo")
    fut.fleet.publisher.publish([deposit("before")])
    wait_until(lambda: "before" in fut.deposits(), timeout=30, what="the worker consuming")

    fut.redis.lpush(queue, NOT_JSON)
    fut.redis.lpush(queue, NOT_AN_ENVELOPE)
    fut.fleet.publisher.publish([deposit(f"after-{n}") for n in range(10)])

    wait_until(lambda: len(fut.deposits()) == 11, timeout=60, what="the good events behind the strays")
    letters = wait_until(lambda: len(fut.letters()) >= 2 and fut.letters(), timeout=30, what="2 letters")
    by_envelope = {letter.envelope: letter for letter in letters}
    assert set(by_envelope) == {"base64:/3tub3QganNvbiBhdCBhbGw=", NOT_AN_ENVELOPE.decode()}
    assert "not JSON" in by_envelope["base64:/3tub3QganNvbiBhdCBhbGw="].error_message
    assert "not a kombu message" in by_envelope[NOT_AN_ENVELOPE.decode()].error_message
    assert all(letter.queue == queue for letter in letters)

    fut.fleet.publisher.publish([deposit("later")])
    wait_until(lambda: "later" in fut.deposits(), timeout=30, what="the worker still consuming")
    assert worker.alive() and worker.pid == pid
    assert "Unrecoverable error" not in worker.log()
    assert fut.redis.llen(queue) == 0
