"""Building order events and checking the saga's invariants, for the order tests."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from handlers.envelope import Event, new_event
from infra.orders.schema import order_lines, order_timeline, orders
from infra.orders.store import stock_levels
from tests.support.payment_standin import PaymentStandIn


def placed(order_id: str, items: dict[str, int], *, customer: str = "c1", card: str = "tok_visa") -> Event:
    data = {
        "order_id": order_id,
        "customer_id": customer,
        "card": card,
        "items": [{"product_id": product, "quantity": quantity} for product, quantity in items.items()],
    }
    return new_event("orders.order_placed", data, source="shop", id=f"placed-{order_id}")


def cancel_requested(order_id: str) -> Event:
    return new_event(
        "orders.cancel_requested", {"order_id": order_id}, source="shop", id=f"cancel-{order_id}"
    )


def order_rows(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        return {row.order_id: row for row in connection.execute(select(orders))}


def announcements(engine: Engine) -> Counter[tuple[str, str]]:
    query = select(order_timeline.c.order_id, order_timeline.c.outcome).where(
        order_timeline.c.step == "announce"
    )
    with engine.connect() as connection:
        return Counter((row.order_id, row.outcome) for row in connection.execute(query))


def settled(engine: Engine, expected: int) -> bool:
    """All `expected` orders are final, their outcome was announced, and every compensated order's
    charge was voided (the void follows the committed cancellation as an event of its own)."""
    rows = order_rows(engine)
    final = sum(row.status in ("confirmed", "cancelled") for row in rows.values())
    if not (len(rows) == expected and final == expected and sum(announcements(engine).values()) >= expected):
        return False
    compensating = ("orders.cancel_requested", "orders.order_timed_out")
    with engine.connect() as connection:
        steps = list(connection.execute(select(order_timeline)))
    compensated = {
        s.order_id
        for s in steps
        if (s.step, s.outcome) == ("cancel", "cancelled") and s.event_type in compensating
    }
    return compensated <= {s.order_id for s in steps if s.step == "void"}


@dataclass
class Summary:
    confirmed: int
    cancelled: int
    reasons: Counter[str]


def check_invariants(engine: Engine, standin: PaymentStandIn, initial_stock: dict[str, int]) -> Summary:
    """Every order final; stock balances to the unit; one charge per confirmed order and none
    kept for a cancelled one; exactly one announcement of each order's outcome."""
    rows = order_rows(engine)
    assert {row.status for row in rows.values()} <= {"confirmed", "cancelled"}
    confirmed = {order_id for order_id, row in rows.items() if row.status == "confirmed"}

    sold: Counter[str] = Counter()
    with engine.connect() as connection:
        for line in connection.execute(select(order_lines)):
            if line.order_id in confirmed:
                sold[line.product_id] += line.quantity
    stock = stock_levels(engine)
    assert all(units >= 0 for units in stock.values())
    unbalanced = {
        p: (stock[p], sold[p], units) for p, units in initial_stock.items() if stock[p] + sold[p] != units
    }
    assert unbalanced == {}, "product: (available, sold, initial)"

    charged = standin.charged()
    assert all(count == 1 for count in charged.values()), "a payment was charged twice"
    unpaid, kept = confirmed - set(charged), set(charged) - confirmed
    kept_charges = [c for c in standin.charges.values() if c.reference in kept]
    assert (unpaid, kept) == (set(), set()), (
        f"confirmed without a charge: {sorted(unpaid)}; cancelled with a charge kept: {kept_charges}"
    )
    keys_per_order = Counter(charge.reference for charge in standin.charges.values())
    assert all(count == 1 for count in keys_per_order.values()), "one order charged under two keys"
    charge_ids = {c.reference: c.charge_id for c in standin.charges.values() if c.succeeded}
    assert all(rows[order_id].charge_id == charge_ids[order_id] for order_id in confirmed)

    announced = announcements(engine)
    for order_id, row in rows.items():
        outcome = "order_confirmed" if row.status == "confirmed" else "order_cancelled"
        other = "order_cancelled" if row.status == "confirmed" else "order_confirmed"
        assert (announced[(order_id, outcome)], announced[(order_id, other)]) == (1, 0), order_id

    reasons = Counter((row.reason or "").split(":")[0] for row in rows.values() if row.status == "cancelled")
    return Summary(confirmed=len(confirmed), cancelled=len(rows) - len(confirmed), reasons=reasons)
