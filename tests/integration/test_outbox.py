"""Follow-ups go out through the outbox: a crash between commit and publish loses nothing."""

from __future__ import annotations

import json
import time

from sqlalchemy import func, insert, select

from infra.schema import outbox
from tests.integration.conftest import FleetUnderTest
from tests.integration.helpers import deposit
from tests.support.processes import wait_until


def outbox_rows(fut: FleetUnderTest) -> int:
    with fut.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(outbox)).scalar_one())


def test_follow_ups_left_in_the_outbox_by_a_crash_are_relayed_by_beat(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    # As a worker leaves it when it dies after its commit and before it publishes.
    left_behind = deposit("orphan-follow-up")
    with fut.engine.begin() as connection:
        connection.execute(
            insert(outbox).values(created_at=time.time() - 60, event=json.dumps(left_behind.to_dict()))
        )
    fut.start_worker()
    fut.start("beat")

    wait_until(lambda: fut.deposits() == {"orphan-follow-up": 1}, timeout=40, what="the relayed follow-up")
    wait_until(lambda: outbox_rows(fut) == 0, timeout=10, what="an empty outbox")


def test_follow_ups_are_published_right_after_commit_and_leave_no_outbox_rows(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    fut.start_worker()  # no beat: the worker itself must publish the follow-up
    fut.fleet.publisher.publish([deposit("with-receipt", email="someone@example.com")])
    wait_until(
        lambda: fut.redis.llen(fut.fleet.domains.port("receipts").key) == 1, timeout=30, what="the receipt"
    )
    receipt = json.loads(fut.redis.lindex(fut.fleet.domains.port("receipts").key, 0))
    assert receipt == {
        "to": "someone@example.com",
        "text": "1 deposited to acc-1",
        "key": "with-receipt/receipt",
    }
    assert outbox_rows(fut) == 0
