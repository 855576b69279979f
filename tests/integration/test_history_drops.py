"""History entries a worker gives up writing are counted, in /metrics and on the console's
overview; the events themselves take effect."""

from __future__ import annotations

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text

from tests.integration.conftest import FleetUnderTest
from tests.integration.helpers import deposit
from tests.integration.test_console_access import client_for, log_in
from tests.support.processes import wait_until
from workers.bootstrap import Runtime


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """Redis only: history is written after the broker's part is done, the same on both."""
    return redis_url


def dropped_in_metrics(client: object) -> float:
    body = client.get("/metrics").text  # type: ignore[attr-defined]
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == "fleet_history_dropped_total"
    )


def test_history_the_database_refuses_is_counted_and_shown_on_the_overview(
    fleet_under_test: FleetUnderTest, console_runtime: Runtime, engine: Engine
) -> None:
    fut = fleet_under_test
    refuse = "ALTER TABLE fleet_event_history ADD CONSTRAINT no_history CHECK (event_id NOT LIKE 'lost-%')"
    with engine.begin() as connection:  # the database takes deposits, and refuses their history
        connection.execute(text(refuse))
    try:
        counted_and_shown(fut, console_runtime)
    finally:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE fleet_event_history DROP CONSTRAINT no_history"))


def counted_and_shown(fut: FleetUnderTest, console_runtime: Runtime) -> None:
    fut.start_worker()
    fut.fleet.publisher.publish([deposit(f"lost-{n}") for n in range(3)])
    wait_until(lambda: len(fut.deposits()) == 3, timeout=30, what="the deposits")

    client = client_for(console_runtime)
    wait_until(lambda: dropped_in_metrics(client) >= 3, timeout=30, what="the drops counted in /metrics")
    log_in(client, "bob")
    page = client.get("/console/")
    assert page.status_code == 200
    shown = re.search(r'id="history-dropped">(\d+)<', page.text)
    assert shown and int(shown.group(1)) >= 3, page.text[-2000:]
