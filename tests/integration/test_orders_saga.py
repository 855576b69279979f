"""The order saga on real workers, step by step: confirmation, a declined card, missing stock,
an unknown product, bad data, a customer's cancellation, a payment that never answers (timed
out by beat), duplicates, and `fleet orders show`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from infra.orders.schema import order_timeline
from infra.orders.store import put_products, stock_levels
from tests.integration.conftest import FleetUnderTest
from tests.support.orders import cancel_requested, check_invariants, order_rows, placed, settled
from tests.support.payment_standin import PaymentStandIn
from tests.support.processes import wait_until

STOCK = {"apple": (100, 10), "pear": (250, 5), "plum": (80, 1)}


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """The saga calls no broker-specific code; the core's tests cover both brokers."""
    return redis_url


@pytest.fixture
def standin() -> Iterator[PaymentStandIn]:
    server = PaymentStandIn(hang=1.5).start()
    yield server
    server.stop()


@pytest.fixture
def fleet_env(fleet_env: dict[str, str], standin: PaymentStandIn) -> dict[str, str]:
    return {
        **fleet_env,
        "FLEET_PAYMENTS_URL": standin.url,
        "FLEET_PAYMENTS_TIMEOUT": "1",
        "FLEET_ORDER_STEP_TIMEOUT": "8",
    }


def steps(fut: FleetUnderTest, order_id: str) -> list[tuple[str, str]]:
    query = (
        select(order_timeline.c.step, order_timeline.c.outcome)
        .where(order_timeline.c.order_id == order_id)
        .order_by(order_timeline.c.id)
    )
    with fut.engine.connect() as connection:
        return [(row.step, row.outcome) for row in connection.execute(query)]


def test_each_way_an_order_can_end(fleet_under_test: FleetUnderTest, standin: PaymentStandIn) -> None:
    fut = fleet_under_test
    put_products(fut.engine, STOCK)
    cache = fut.fleet.domains.port("cache")
    cache.get_or_set("orders:c1", lambda: ["an old list"], ttl=300, tags=["customer:c1:orders"])
    fut.start_worker()
    fut.start("beat")
    events = [
        placed("ok", {"apple": 2, "pear": 1}),
        placed("declined", {"apple": 1}, card="tok_declined", customer="c2"),
        placed("short", {"plum": 2}),
        placed("unknown", {"kiwi": 1}),
        placed("hangs", {"apple": 1}, card="tok_hang"),
        placed("cancelled", {"pear": 2}, card="tok_hang"),
    ]
    fut.fleet.publisher.publish(events)
    fut.fleet.publisher.publish(events)  # every event delivered twice
    bad = placed("bad", {"apple": 0})
    fut.fleet.publisher.publish([bad])

    wait_until(lambda: standin.requests["order:cancelled:charge"] > 0, timeout=60, what="the charge to hang")
    fut.fleet.publisher.publish([cancel_requested("cancelled")])
    wait_until(lambda: settled(fut.engine, 6), timeout=120, what="every order settled")
    fut.fleet.publisher.publish([cancel_requested("ok")])  # too late: confirmed orders stay

    rows = order_rows(fut.engine)
    assert {order_id: (row.status, row.reason) for order_id, row in rows.items()} == {
        "ok": ("confirmed", None),
        "declined": ("cancelled", "payment declined: card_declined"),
        "short": ("cancelled", "out of stock: plum"),
        "unknown": ("cancelled", "unknown products: kiwi"),
        "hangs": ("cancelled", "timed out while charging"),
        "cancelled": ("cancelled", "cancelled by the customer"),
    }
    assert rows["ok"].amount == 2 * 100 + 250
    summary = check_invariants(fut.engine, standin, {p: units for p, (_, units) in STOCK.items()})
    assert (summary.confirmed, summary.cancelled) == (1, 5)
    assert stock_levels(fut.engine) == {"apple": 8, "pear": 4, "plum": 1}
    assert {ref for ref, c in {c.reference: c for c in standin.charges.values()}.items() if c.refunded} == {
        "hangs",
        "cancelled",
    }  # both were charged by an attempt whose answer was lost; compensation refunded them
    assert "order:short:charge" not in standin.requests  # missing stock cancels before any payment
    assert not fut.redis.exists(f"{cache.namespace}:k:orders:c1")  # the confirmation dropped the list

    assert steps(fut, "declined") == [
        ("place", "placed"),
        ("reserve", "reserved"),
        ("charge", "declined"),
        ("release", "released"),
        ("cancel", "cancelled"),
        ("announce", "order_cancelled"),
    ]
    compensated = [
        ("place", "placed"),
        ("reserve", "reserved"),
        ("release", "released"),
        ("cancel", "cancelled"),
    ]
    # After the cancellation commits, its two follow-ups run in either order: the void, the announcement.
    after = {("void", "refunded"), ("announce", "order_cancelled")}
    for order_id in ("hangs", "cancelled"):  # charge retries that come after find nothing to do
        wait_until(
            lambda order_id=order_id: ("void", "refunded") in steps(fut, order_id),
            timeout=60,
            what="the void",
        )
        found = [step for step in steps(fut, order_id) if step != ("charge", "skipped")]
        assert (found[:4], set(found[4:]), len(found)) == (compensated, after, 6)
    wait_until(lambda: ("cancel", "ignored") in steps(fut, "ok"), timeout=60, what="the late cancellation")
    assert order_rows(fut.engine)["ok"].status == "confirmed"

    letters = fut.letters()
    assert [(letter.event_id, letter.error_type) for letter in letters] == [("placed-bad", "InvalidEvent")]
    assert "data.items.0.quantity" in letters[0].error_message

    shown = fut.cli("orders", "show", "ok")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("order ok  customer c1  confirmed  450 EUR  charge ch_")
    assert [line.split()[1:3] for line in lines[1:]] == [
        ["place", "placed"],
        ["reserve", "reserved"],
        ["charge", "charged"],
        ["confirm", "confirmed"],
        ["announce", "order_confirmed"],
        ["cancel", "ignored"],
    ]
    assert "orders.payment_requested" in lines[3] and "ok/payment" in lines[3]
    missing = fut.cli("orders", "show", "nope")
    assert missing.returncode == 1 and "no order 'nope'" in missing.stderr
