"""Rate limits and circuit breakers postpone events instead of failing them."""

from __future__ import annotations

import time

from tests.integration.conftest import FleetUnderTest
from tests.integration.helpers import flaky
from tests.support.processes import wait_until


def test_a_fleet_wide_rate_limit_paces_a_downstream_and_spends_no_attempts(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    limits = {"FLEET_RATE_LIMITS": "bank=20"}
    fut.start_worker(concurrency=2, env=limits)
    fut.start_worker(concurrency=1, env=limits)  # two workers share one bucket
    began = time.monotonic()
    fut.fleet.publisher.publish([flaky(f"paced-{n}") for n in range(70)])
    wait_until(lambda: len(fut.deposits()) == 70, timeout=60, what="70 paced deposits")
    elapsed = time.monotonic() - began
    assert elapsed >= 2.0, f"70 calls at 20/s after a burst of 20 take 2.5 s, took {elapsed:.2f}s"
    assert max(fut.deposits().values()) == 1
    assert fut.letters() == []


def test_an_open_breaker_holds_events_through_an_outage_instead_of_dead_lettering_them(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    worker = fut.start_worker(concurrency=2)
    fut.redis.set(fut.fleet.domains.port("downstream").key("bank"), 1)
    fut.fleet.publisher.publish([flaky(f"held-{n}", needs="bank") for n in range(30)])
    worker.wait_for_log("circuit opened", timeout=30)
    time.sleep(4)  # an outage of two cooldowns: without the breaker, every event would be dead by now
    fut.redis.delete(fut.fleet.domains.port("downstream").key("bank"))

    wait_until(lambda: len(fut.deposits()) + len(fut.letters()) == 30, timeout=60, what="every event settled")
    assert len(fut.letters()) <= 5, (
        "only events that failed before the breaker opened may run out of attempts"
    )
    assert len(fut.deposits()) >= 25
    assert max(fut.deposits().values()) == 1
