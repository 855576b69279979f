"""Workers write the event history the console reads: every attempt of an event, in order."""

from __future__ import annotations

from tests.integration.conftest import FleetUnderTest
from tests.integration.helpers import deposit, flaky
from tests.support.processes import wait_until


def test_an_events_retries_success_and_duplicate_delivery_are_in_its_timeline(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    fut.start_worker(concurrency=1)
    history = fut.fleet.history
    fut.fleet.publisher.publish([flaky("retried-1", fail_times=2)])
    fut.fleet.publisher.publish([deposit("batch-1"), deposit("batch-2")])

    def outcomes(event_id: str) -> list[tuple[str, int]]:
        return [(entry.outcome, entry.attempt) for entry in history.timeline(event_id)]

    wait_until(lambda: ("handled", 3) in outcomes("retried-1"), timeout=60, what="the third attempt")
    assert outcomes("retried-1") == [("retry_scheduled", 1), ("retry_scheduled", 2), ("handled", 3)]
    assert "downstream unavailable" in history.timeline("retried-1")[0].detail

    wait_until(lambda: outcomes("batch-2") == [("handled", 1)], timeout=30, what="the batch's entries")
    fut.fleet.publisher.publish([deposit("batch-2")])
    wait_until(lambda: len(outcomes("batch-2")) == 2, timeout=30, what="the duplicate's entry")
    assert outcomes("batch-2") == [("handled", 1), ("duplicate", 1)]
    assert fut.deposits()["batch-2"] == 1
