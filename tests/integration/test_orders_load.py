"""Many concurrent orders over 50 products with limited stock, declines and lost payment answers
injected, a tenth of the orders sent twice, and two workers SIGKILLed mid-saga: every order ends
confirmed or cancelled, stock balances to the unit, nothing is charged twice or kept for a
cancelled order, and each outcome is announced exactly once."""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from infra.orders.store import put_products
from tests.integration.conftest import FleetUnderTest
from tests.support.orders import announcements, check_invariants, order_rows, placed, settled
from tests.support.payment_standin import PaymentStandIn
from tests.support.processes import wait_until

ORDERS = int(os.environ.get("ORDERS_UNDER_TEST", "2000"))
"""The issue asks for 2,000; ORDERS_UNDER_TEST scales the run (the figures print either way)."""
PRODUCTS = {f"p{n:02d}": (100 + n, 40) for n in range(50)}  # about half the demand can be met


@pytest.fixture
def broker_url(redis_url: str) -> str:
    return redis_url


@pytest.fixture
def standin() -> Iterator[PaymentStandIn]:
    server = PaymentStandIn(timeout_rate=0.03, hang=1.5).start()
    yield server
    server.stop()


@pytest.fixture
def fleet_env(fleet_env: dict[str, str], standin: PaymentStandIn) -> dict[str, str]:
    return {
        **fleet_env,
        "FLEET_PAYMENTS_URL": standin.url,
        "FLEET_PAYMENTS_TIMEOUT": "1",
        "FLEET_ORDER_STEP_TIMEOUT": "30",
        "FLEET_VISIBILITY_TIMEOUT": "20",  # a killed worker's messages come back within ~20 s
    }


class Unsettled:
    """What a wait for every order to settle says when it times out: where the orders stand."""

    def __init__(self, fut: FleetUnderTest) -> None:
        self._fut = fut

    def __str__(self) -> str:
        rows = order_rows(self._fut.engine)
        statuses = Counter(row.status for row in rows.values())
        announced = sum(announcements(self._fut.engine).values())
        stuck = sorted(order_id for order_id, row in rows.items() if row.status == "charging")[:5]
        return (
            f"every order settled: {len(rows)} orders {dict(statuses)}, {announced} announced, "
            f"charging {stuck}"
        )


@pytest.mark.timeout(600)  # its own waits say what is late, well before
def test_concurrent_orders_with_faults_and_a_killed_worker_stay_consistent(
    fleet_under_test: FleetUnderTest, standin: PaymentStandIn
) -> None:
    fut = fleet_under_test
    rng = random.Random(6)
    put_products(fut.engine, PRODUCTS)
    products = sorted(PRODUCTS)
    events = []
    for n in range(ORDERS):
        items = {p: rng.randint(1, 2) for p in rng.sample(products, rng.randint(1, 3))}
        roll = rng.random()
        card = "tok_declined" if roll < 0.1 else "tok_hang" if roll < 0.105 else "tok_visa"
        events.append(placed(f"o{n:05d}", items, customer=f"c{n % 200}", card=card))
    doubles = rng.sample(events, ORDERS // 10)

    first, second = fut.start_worker(), fut.start_worker()
    fut.start("beat")
    began = time.monotonic()
    fut.fleet.publisher.publish(events)
    fut.fleet.publisher.publish(doubles)

    def final() -> int:
        return sum(row.status != "charging" for row in order_rows(fut.engine).values())

    killed_at = []
    for doomed, share in ((first, 0.25), (second, 0.6)):
        wait_until(
            lambda s=share: final() >= ORDERS * s, timeout=300, interval=0.5, what=f"{share:.0%} settled"
        )
        killed_at.append(final())
        doomed.kill()  # SIGKILL mid-saga: its reserved and running messages come back to the others
        fut.start_worker()
    wait_until(lambda: settled(fut.engine, ORDERS), timeout=300, interval=1.0, what=Unsettled(fut))
    elapsed = time.monotonic() - began

    summary = check_invariants(fut.engine, standin, {p: units for p, (_, units) in PRODUCTS.items()})
    for letter in fut.letters():  # only a provider that never answers may exhaust a payment step
        assert (letter.handler, letter.error_type) == ("fleet.orders.charge", "PaymentUnavailable"), letter
        assert order_rows(fut.engine)[letter.event_id.removesuffix("/payment")].card == "tok_hang"
    print(
        f"\n{ORDERS} orders ({len(doubles)} sent twice) over {len(PRODUCTS)} products settled in "
        f"{elapsed:.1f}s; workers killed with {killed_at} settled; {summary.confirmed} confirmed, "
        f"{summary.cancelled} cancelled {dict(summary.reasons)}; provider: {sum(standin.requests.values())} "
        f"requests, {standin.late_answers} late answers, {len(fut.letters())} dead letters"
    )
    assert summary.confirmed > 0 and summary.reasons["payment declined"] > 0
    assert summary.reasons["out of stock"] > 0 and summary.reasons["timed out while charging"] > 0
