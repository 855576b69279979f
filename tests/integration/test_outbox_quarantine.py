"""The relay beat runs goes past an outbox row that can never be sent: quarantined in the DLQ."""

from __future__ import annotations

import json
import time

from sqlalchemy import func, insert, select

from handlers.envelope import new_event
from infra.schema import outbox
from tests.integration.conftest import FleetUnderTest
from tests.integration.helpers import deposit
from tests.support.processes import wait_until


def test_an_unroutable_outbox_row_is_quarantined_and_the_rows_behind_it_are_relayed(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    retired = new_event("demo.retired_type", {"x": 1}, source="tests", id="retired-1")
    bodies = [json.dumps(retired.to_dict()), json.dumps(deposit("behind-1").to_dict())]
    with fut.engine.begin() as connection:  # as a crash left them, written before the type was retired
        rows = [{"created_at": time.time() - 60, "event": body} for body in bodies]
        connection.execute(insert(outbox), rows)
    fut.start_worker()
    fut.start("beat")

    wait_until(lambda: fut.deposits() == {"behind-1": 1}, timeout=40, what="the row behind relayed")
    [letter] = wait_until(fut.letters, timeout=10, what="the unroutable row dead-lettered")
    assert (letter.event_id, letter.error_type, letter.handler) == (
        "retired-1",
        "UnknownEventType",
        "fleet.outbox.relay",
    )
    with fut.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(outbox)).scalar_one() == 0
