"""A worker that dies after the confirming transaction commits and before it publishes the
follow-ups: the outbox keeps them, the relay publishes them, and the confirmation takes effect
exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from handlers.envelope import new_event
from infra.orders.store import put_products
from infra.schema import event_history, outbox
from tests.integration.conftest import FleetUnderTest
from tests.support.orders import announcements, order_rows, placed
from tests.support.payment_standin import PaymentStandIn
from tests.support.processes import wait_until

# Loaded by every Python process started with this directory on PYTHONPATH: the worker, and the
# pool children it forks. It kills the process at the one moment that matters, between the
# commit of a step that confirmed an order and the publication of its follow-ups.
CRASH_AFTER_COMMIT = """
import os
from engine import effects

_publish = effects.Effects._publish_follow_ups

def _die_before_publishing(self, outbox_ids, follow_ups):
    if any(event.type == "orders.order_confirmed" for event in follow_ups):
        open(os.environ["CRASH_MARKER"], "a").write(f"{os.getpid()}\\n")
        os._exit(137)
    return _publish(self, outbox_ids, follow_ups)

effects.Effects._publish_follow_ups = _die_before_publishing
"""


@pytest.fixture
def broker_url(redis_url: str) -> str:
    return redis_url


@pytest.fixture
def standin() -> Iterator[PaymentStandIn]:
    server = PaymentStandIn().start()
    yield server
    server.stop()


@pytest.fixture
def fleet_env(fleet_env: dict[str, str], standin: PaymentStandIn) -> dict[str, str]:
    return {**fleet_env, "FLEET_PAYMENTS_URL": standin.url, "FLEET_PAYMENTS_TIMEOUT": "2"}


def duplicates(fut: FleetUnderTest, event_id: str) -> int:
    query = select(func.count()).where(
        event_history.c.event_id == event_id, event_history.c.outcome == "duplicate"
    )
    with fut.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def outbox_rows(fut: FleetUnderTest) -> int:
    with fut.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(outbox)).scalar_one())


def test_a_confirmation_left_in_the_outbox_by_a_crash_arrives_once(
    fleet_under_test: FleetUnderTest, standin: PaymentStandIn, tmp_path: Path
) -> None:
    fut = fleet_under_test
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(CRASH_AFTER_COMMIT)
    marker = tmp_path / "crashed"
    put_products(fut.engine, {"apple": (100, 10)})
    fut.fleet.domains.port("cache").get_or_set("orders:c1", lambda: [], ttl=300, tags=["customer:c1:orders"])

    fut.start_worker(env={"PYTHONPATH": str(hooks), "CRASH_MARKER": str(marker)})
    fut.fleet.publisher.publish([placed("o1", {"apple": 3})])
    wait_until(marker.exists, timeout=60, what="the worker to die after its commit")
    assert order_rows(fut.engine)["o1"].status == "confirmed"  # committed...
    assert outbox_rows(fut) == 2  # ...and its confirmation and cache invalidation still unpublished
    assert announcements(fut.engine) == {}

    fut.start("beat")  # the relay
    wait_until(lambda: announcements(fut.engine), timeout=90, what="the relayed confirmation")
    wait_until(lambda: outbox_rows(fut) == 0, timeout=30, what="an empty outbox")
    wait_until(
        lambda: not fut.redis.exists(f"{fut.fleet.domains.port('cache').namespace}:k:orders:c1"),
        timeout=30,
        what="the relayed cache invalidation",
    )
    confirmed_again = new_event(
        "orders.order_confirmed", {"order_id": "o1"}, source="shop", id="o1/confirmed"
    )
    fut.fleet.publisher.publish([confirmed_again])  # one more delivery, as a second relay would make
    wait_until(lambda: duplicates(fut, "o1/confirmed"), timeout=60, what="the duplicate to be seen")
    assert announcements(fut.engine) == {("o1", "order_confirmed"): 1}
    assert standin.charged() == {"o1": 1}
    assert marker.read_text().count("\n") == 1  # one crash: the redelivery was a duplicate, no publish
