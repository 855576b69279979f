"""Lag, not counts: how long the oldest dead letter and the oldest unpublished follow-up have
waited (the web process, read at scrape time), and when each type last took effect (a worker).

The ages are read from PostgreSQL and the last-event time is a worker's, whatever the broker: Redis
only.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, update
from starlette.testclient import TestClient

from handlers.envelope import new_event
from infra.schema import dead_letters, outbox
from tests.integration.conftest import FleetUnderTest
from tests.integration.helpers import deposit
from tests.support.processes import wait_until
from tests.support.worker_metrics import parse_samples, scrape, series, start_with_metrics
from workers.web import make_web_app

pytestmark = pytest.mark.parametrize("broker_url", ["redis"], indirect=True)


def _web_samples(fut: FleetUnderTest) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with TestClient(make_web_app(fut.runtime)) as client:
        return parse_samples(client.get("/metrics").text)


def test_the_oldest_dead_letter_and_outbox_row_are_reported_by_age(fleet_under_test: FleetUnderTest) -> None:
    fut = fleet_under_test
    assert series(_web_samples(fut), "fleet_outbox_oldest_age_seconds") == [0.0]
    assert series(_web_samples(fut), "fleet_dead_letter_oldest_age_seconds") == []

    fut.start_worker(concurrency=1)
    invalid = [deposit(f"bad-{n}", amount=0) for n in range(3)]  # refused by the handler: dead-lettered
    fut.fleet.publisher.publish(invalid)
    wait_until(lambda: len(fut.letters()) == 3, timeout=30, what="three dead letters")
    hour_ago, two_hours_ago = time.time() - 3600, time.time() - 7200
    with fut.engine.begin() as connection:
        dated = update(dead_letters).where(dead_letters.c.event_id == "bad-0")
        connection.execute(dated.values(last_failed_at=_utc(hour_ago)))
        archived = update(dead_letters).where(dead_letters.c.event_id == "bad-1")
        connection.execute(archived.values(last_failed_at=_utc(two_hours_ago), status="archived"))
        row = {"created_at": time.time() - 600, "event": deposit("late-follow-up").to_json().decode()}
        connection.execute(insert(outbox).values(row))

    samples = _web_samples(fut)
    queue = fut.letters()[0].queue
    [letter_age] = series(samples, "fleet_dead_letter_oldest_age_seconds", queue=queue)
    assert 3600 <= letter_age < 3660, "the oldest letter still dead; the archived one set aside"
    [outbox_age] = series(samples, "fleet_outbox_oldest_age_seconds")
    assert 600 <= outbox_age < 660
    assert series(samples, "fleet_outbox_backlog") == [1.0]


def test_a_worker_reports_when_each_type_last_took_effect(
    fleet_under_test: FleetUnderTest, tmp_path: Path
) -> None:
    fut = fleet_under_test
    port = start_with_metrics(fut, tmp_path, concurrency=2)
    before = time.time()
    fut.fleet.publisher.publish([deposit("last-1"), deposit("last-2")])
    unsendable = new_event("demo.receipt_requested", {"account": "acc-1"}, source="tests", id="no-recipient")
    fut.fleet.publisher.publish([unsendable])  # no `to`: dead-lettered, never handled
    wait_until(lambda: len(fut.deposits()) == 2 and len(fut.letters()) == 1, timeout=30, what="both outcomes")

    def handled_at() -> list[float]:
        return series(scrape(port), "fleet_last_event_timestamp_seconds", type="demo.deposit_recorded")

    wait_until(lambda: handled_at() != [], timeout=15, what="the deposits' time")
    [stamp] = handled_at()
    assert before <= stamp <= time.time()
    assert series(scrape(port), "fleet_last_event_timestamp_seconds", type="demo.receipt_requested") == []


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
