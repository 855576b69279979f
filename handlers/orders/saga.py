"""The order saga's steps, one handler each, all transactional.

    order_placed ──▶ place_order: validate, reserve stock ──▶ payment_requested
                          └─ unknown product / short of stock ──▶ order_cancelled
    payment_requested ──▶ charge_payment: charge ──▶ order_confirmed (+ cache.invalidate)
                          └─ declined: release stock ──▶ order_cancelled
    cancel_requested / order_timed_out ──▶ release stock ──▶ order_cancelled + charge_void_requested
    charge_void_requested ──▶ void_charge: void any charge made under the order's charge key

Transactional mode everywhere: the ledger row, the order's state, stock and timeline, and the
follow-up events (outbox) commit together, so a redelivered step is a no-op and a crash loses
nothing. Each step locks the order's row first (`OrderBook.lock`) and checks the order's state,
so two events of one order run one after the other and a step that comes too late does nothing.

The payment step calls the provider inside its transaction, holding the order's row lock:
the call is idempotent by its key (`order:<id>:charge`), so a transaction that rolls back
after the call (timeout, crash, a batch falling back) charges nothing more when it runs again;
it just reads the provider's first answer. That is why it needs no claim: a claim would let a
cancellation race the call, where the row lock makes them queue. The lock lasts until the
transaction commits: one call (at most the payment timeout) for a single event, the batch's calls
for a batch.

Compensation outside the database goes out only after the cancellation commits (the void is a
follow-up event, not a call inside the cancelling transaction). A void sent from inside a
transaction that then rolled back (a crash, a batch falling back) would refund a charge whose
order could still be confirmed by the payment step; once the cancellation is committed, the
payment step sees a cancelled order and stops, so a void can never undo a confirmed order.
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.envelope import Event, follow_up
from handlers.errors import InvalidEvent, RetryableError
from handlers.orders.model import Order, Status, charge_key, order_id_of, parse_new_order, void_key
from handlers.orders.ports import OrderBook, Payments
from handlers.ports import Clock


@dataclass(frozen=True, slots=True)
class SagaPolicy:
    step_timeout: float = 300.0
    """Seconds an order may wait in a step before the time-out job compensates it."""


def place_order(event: Event, *, orders: OrderBook, clock: Clock, order_policy: SagaPolicy) -> list[Event]:
    """Validate the items and reserve their stock, all or nothing; then ask for the payment.
    Transactional (see the module docstring); bad data is dead-lettered, an unknown product or
    missing stock cancels the order at once."""
    new = parse_new_order(event)
    now = clock.now()
    prices = orders.prices([line.product_id for line in new.lines])
    amount = sum(prices.get(line.product_id, 0) * line.quantity for line in new.lines)
    if not orders.create(new, amount=amount, now=now):
        orders.note(new.order_id, "place", "ignored", event, "an order with this id exists")
        return []
    lines = f"{len(new.lines)} line{'s' if len(new.lines) > 1 else ''}"
    orders.note(new.order_id, "place", "placed", event, f"{lines}, {amount} {new.currency}")
    if unknown := [line.product_id for line in new.lines if line.product_id not in prices]:
        return _cancel(
            event, orders, new.order_id, new.customer_id, f"unknown products: {', '.join(unknown)}"
        )
    if short := orders.reserve(new.lines):
        return _cancel(event, orders, new.order_id, new.customer_id, f"out of stock: {', '.join(short)}")
    orders.settle(new.order_id, Status.CHARGING, deadline=now + order_policy.step_timeout)
    orders.note(new.order_id, "reserve", "reserved", event)
    request = {"order_id": new.order_id}
    return [follow_up(event, "orders.payment_requested", request, id=f"{new.order_id}/payment")]


def charge_payment(event: Event, *, orders: OrderBook, payments: Payments) -> list[Event]:
    """Charge the order's card; confirm it, or compensate a decline. Transactional, with an
    external call idempotent by key (see the module docstring)."""
    order = _locked(orders, order_id_of(event), missing_is_retryable=False)
    if order.status is not Status.CHARGING:
        orders.note(order.order_id, "charge", "skipped", event, f"order is {order.status}")
        return []
    result = payments.charge(
        key=charge_key(order.order_id),
        amount=order.amount,
        currency=order.currency,
        card=order.card,
        reference=order.order_id,
    )
    if not result.succeeded:
        orders.note(order.order_id, "charge", "declined", event, result.reason or "")
        orders.release(order.order_id)
        orders.note(order.order_id, "release", "released", event)
        return _cancel(event, orders, order.order_id, order.customer_id, f"payment declined: {result.reason}")
    orders.settle(order.order_id, Status.CONFIRMED, charge_id=result.charge_id)
    orders.note(order.order_id, "charge", "charged", event, result.charge_id or "")
    orders.note(order.order_id, "confirm", "confirmed", event)
    confirmed = {
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "amount": order.amount,
        "currency": order.currency,
        "charge_id": result.charge_id,
    }
    return [
        follow_up(event, "orders.order_confirmed", confirmed, id=f"{order.order_id}/confirmed"),
        _orders_changed(event, order.customer_id, order.order_id),
    ]


def cancel_order(event: Event, *, orders: OrderBook) -> list[Event]:
    """The customer cancels: compensate what was done (void any charge, release the stock).
    A confirmed order is past cancelling here (that is a return). Transactional; an order not
    yet placed is retried, since its `order_placed` may still be on its way."""
    order = _locked(orders, order_id_of(event), missing_is_retryable=True)
    return _compensate(event, orders, order, "cancelled by the customer")


def time_out_order(event: Event, *, orders: OrderBook, clock: Clock) -> list[Event]:
    """Compensate an order still in the step it timed out in (`data.status`) past its deadline.
    Transactional; an order that moved on meanwhile is left alone."""
    order = _locked(orders, order_id_of(event), missing_is_retryable=False)
    step = event.data.get("status")
    if order.status != step or order.deadline is None or order.deadline > clock.now():
        orders.note(order.order_id, "time-out", "ignored", event, f"order is {order.status}")
        return []
    return _compensate(event, orders, order, f"timed out while {step}")


def record_outcome(event: Event, *, orders: OrderBook) -> None:
    """Record that the order's outcome was announced (downstream consumers, e.g. a mailer, hang
    here). Transactional: each announcement is recorded exactly once, whatever the redeliveries."""
    orders.note(order_id_of(event), "announce", event.type.removeprefix("orders."), event)


def _compensate(event: Event, orders: OrderBook, order: Order, reason: str) -> list[Event]:
    if order.status is not Status.CHARGING:
        orders.note(order.order_id, "cancel", "ignored", event, f"order is already {order.status}")
        return []
    orders.release(order.order_id)
    orders.note(order.order_id, "release", "released", event)
    # A charge made by an attempt whose answer was lost would otherwise stay: void it by its key,
    # after this cancellation commits (see the module docstring).
    void = follow_up(
        event, "orders.charge_void_requested", {"order_id": order.order_id}, id=f"{order.order_id}/void"
    )
    return [*_cancel(event, orders, order.order_id, order.customer_id, reason), void]


def void_charge(event: Event, *, orders: OrderBook, payments: Payments) -> None:
    """Void whatever was charged under the cancelled order's charge key (a refund, or a block on
    a charge still on its way). Transactional, with a call idempotent by the void key."""
    order = _locked(orders, order_id_of(event), missing_is_retryable=False)
    outcome = payments.void(key=void_key(order.order_id), charge_key=charge_key(order.order_id))
    orders.note(order.order_id, "void", outcome, event)


def _cancel(event: Event, orders: OrderBook, order_id: str, customer_id: str, reason: str) -> list[Event]:
    orders.settle(order_id, Status.CANCELLED, reason=reason)
    orders.note(order_id, "cancel", "cancelled", event, reason)
    cancelled = {"order_id": order_id, "customer_id": customer_id, "reason": reason}
    return [
        follow_up(event, "orders.order_cancelled", cancelled, id=f"{order_id}/cancelled"),
        _orders_changed(event, customer_id, order_id),
    ]


def _orders_changed(event: Event, customer_id: str, order_id: str) -> Event:
    """The customer's order list changed: drop what the cache holds of it."""
    tags = {"tags": [f"customer:{customer_id}:orders"]}
    return follow_up(event, "cache.invalidate", tags, id=f"{order_id}/orders-list")


def _locked(orders: OrderBook, order_id: str, *, missing_is_retryable: bool) -> Order:
    order = orders.lock(order_id)
    if order is None:
        if missing_is_retryable:
            raise RetryableError(f"order {order_id} is not placed yet")
        raise InvalidEvent("data.order_id", f"no order {order_id!r}")
    return order
