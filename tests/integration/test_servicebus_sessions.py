"""A session-enabled Service Bus queue: events with the same ordering key (`partitionkey`) take
effect in the order they were sent, with two bridges and a worker pool of two running at once."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from handlers.envelope import new_event
from infra.schema import demo_deposits
from tests.integration.conftest import FleetUnderTest
from tests.support.processes import wait_until
from tests.support.servicebus_standin import ServiceBusStandIn

pytestmark = pytest.mark.integration
KEYS = [f"account-{n}" for n in range(8)]
WAVES = [40, 2, 2, 2]  # a long batch, then short ones that would overtake it if run beside it


@pytest.fixture
def queue() -> str:
    return f"ordered-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def bus(queue: str) -> Iterator[ServiceBusStandIn]:
    with ServiceBusStandIn(lock_duration=5, sessions={queue}) as standin:
        yield standin


@pytest.fixture
def broker_url(redis_url: str) -> str:
    return redis_url


@pytest.fixture
def fleet_env(fleet_env: dict[str, str], bus: ServiceBusStandIn, queue: str) -> dict[str, str]:
    return {
        **fleet_env,
        "FLEET_SERVICEBUS_CONNECTION_STRING": bus.connection_string,
        "FLEET_SERVICEBUS_QUEUE": queue,
        "FLEET_SERVICEBUS_SESSIONS": "true",
    }


def _recorded_order(fut: FleetUnderTest) -> dict[str, list[int]]:
    by_key: dict[str, list[int]] = defaultdict(list)
    with fut.engine.connect() as connection:
        for (event_id,) in connection.execute(select(demo_deposits.c.event_id).order_by(demo_deposits.c.id)):
            key, number = event_id.rsplit("/", 1)
            by_key[key].append(int(number))
    return by_key


def test_events_of_one_ordering_key_take_effect_in_the_order_sent(fleet_under_test: FleetUnderTest) -> None:
    fut = fleet_under_test
    fut.start_worker(concurrency=2)
    bridges = [fut.start("bridge", "servicebus") for _ in range(2)]
    for bridge in bridges:
        bridge.wait_for_log("servicebus bridge: queue", timeout=60)
    sent = 0
    for size in WAVES:  # sent while the bridges run, so a session's events come in several batches
        events = [
            new_event(
                "demo.deposit_recorded",
                {"account": key, "amount": 1, "work_ms": 10},  # slow enough for batches to overlap
                source="tests",
                id=f"{key}/{sent + n}",
                partitionkey=key,
            )
            for n in range(size)
            for key in KEYS
        ]
        fut.fleet.transports.servicebus_publisher.publish(events)
        sent += size
        time.sleep(0.15)
    total = len(KEYS) * sent
    wait_until(lambda: len(fut.deposits()) >= total, timeout=180, what="every deposit")
    order = _recorded_order(fut)
    assert set(order) == set(KEYS)
    for key in KEYS:
        assert order[key] == list(range(sent)), f"{key} took effect out of order"
    assert all("holding session" in bridge.log() for bridge in bridges), "both bridges took sessions"
