"""On RabbitMQ with FLEET_RABBITMQ_MANAGEMENT_URL set, the web process reads each queue's waiting
messages and its head message's age from the management API: the publisher stamps each message's
AMQP timestamp with its due time; a message without one leaves its queue's age unknown.

RabbitMQ only: the management API is RabbitMQ's (Redis reads its queues directly, test_metrics.py)."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from tests.integration.conftest import FleetUnderTest
from tests.integration.helpers import deposit, send_raw
from tests.support.processes import wait_until
from tests.support.worker_metrics import Samples, parse_samples, series
from workers.web import make_web_app

pytestmark = pytest.mark.integration
MANAGEMENT_URL = "http://guest:guest@127.0.0.1:15672"


@pytest.fixture
def fleet_env(fleet_env: dict[str, str]) -> dict[str, str]:
    return {**fleet_env, "FLEET_RABBITMQ_MANAGEMENT_URL": MANAGEMENT_URL}


@pytest.mark.parametrize("broker_url", ["amqp"], indirect=True)
def test_queue_depth_and_head_message_age_come_from_the_management_api(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    settings = fut.runtime.settings
    demo, cache, email = (settings.queue_name(q) for q in ("fleet.demo", "fleet.cache", "fleet.email"))
    first_sent = time.time()
    fut.fleet.publisher.publish([deposit("waiting-0")])
    time.sleep(3)  # the head message is 3 s older than the ones behind it
    fut.fleet.publisher.publish([deposit("waiting-1")])
    fut.fleet.publisher.publish([deposit("waiting-2")])
    # A message from a producer that sets no timestamp: its queue's depth is known, its age is not.
    send_raw(fut.runtime, "fleet.cache", b"{}", content_type="application/json", headers={})

    def scrape() -> Samples:
        with TestClient(make_web_app(fut.runtime)) as client:
            return parse_samples(client.get("/metrics").text)

    # The management API's figures are statistics, refreshed every 5 s.
    wait_until(
        lambda: (
            series(scrape(), "fleet_queue_depth", queue=demo) == [3.0]
            and series(scrape(), "fleet_queue_depth", queue=cache) == [1.0]
        ),
        timeout=30,
        what="the depths from the management API",
    )
    samples = scrape()
    [age] = series(samples, "fleet_queue_oldest_age_seconds", queue=demo)
    assert 2.0 <= age <= time.time() - first_sent + 1.0, "the head message's age, the oldest of three"
    assert series(samples, "fleet_queue_oldest_age_seconds", queue=cache) == []
    assert series(samples, "fleet_queue_depth", queue=email) == [0.0]
    assert series(samples, "fleet_queue_oldest_age_seconds", queue=email) == [0.0]
    assert series(samples, "fleet_scrape_errors_total") == []
