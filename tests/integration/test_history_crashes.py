"""A pool process killed outright (an OOM kill, a segfault) takes the history entries it had not
written yet with it: they are counted as dropped, so the overview's count never hides a loss."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from handlers.envelope import Event, new_event
from infra.schema import event_history
from tests.integration.conftest import FleetUnderTest
from tests.integration.helpers import deposit
from tests.support.processes import wait_until


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """History is written after the broker's part is done, the same on both brokers."""
    return redis_url


def crash(event_id: str) -> Event:
    return new_event("demo.crash_requested", {"crash": True}, source="tests", id=event_id)


def handled_entries(fut: FleetUnderTest) -> int:
    query = select(func.count(func.distinct(event_history.c.event_id))).where(
        event_history.c.outcome == "handled", event_history.c.event_id.like("kept-%")
    )
    with fut.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def test_entries_lost_with_a_killed_pool_process_are_counted(fleet_under_test: FleetUnderTest) -> None:
    fut = fleet_under_test
    fut.start_worker(concurrency=1)
    events = []
    for round_ in range(3):  # each crash kills the process while the round's entries wait to be written
        events += [deposit(f"kept-{round_}-{n}") for n in range(100)]
        events.append(
            new_event("demo.crash_requested", {"crash": True}, source="tests", id=f"crash-{round_}")
        )
    fut.fleet.publisher.publish(events)
    wait_until(lambda: len(fut.deposits()) == 300, timeout=120, what="every deposit")
    wait_until(lambda: len(fut.letters()) == 3, timeout=120, what="the crashing events dead-lettered")

    def accounted() -> bool:
        return handled_entries(fut) + fut.fleet.stores.dropped_history.total() >= 300

    wait_until(accounted, timeout=30, what="every deposit's entry written or counted as dropped")
    # and not counted wildly: what was dropped is the missing entries and the crashing events' own
    missing = 300 - handled_entries(fut)
    assert missing <= fut.fleet.stores.dropped_history.total() <= missing + 3 * 3
