"""The order saga's handlers with in-memory fakes: decisions, not I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from handlers.envelope import Event, new_event
from handlers.errors import InvalidEvent, RetryableError
from handlers.orders import saga
from handlers.orders.model import Charge, Line, NewOrder, Order, Status


class FakeBook:
    def __init__(self, prices: dict[str, int], stock: dict[str, int]) -> None:
        self._prices, self.stock = prices, stock
        self.orders: dict[str, Order] = {}
        self.lines: dict[str, tuple[Line, ...]] = {}
        self.notes: list[tuple[str, str, str]] = []

    def create(self, order: NewOrder, *, amount: int, now: float) -> bool:
        if order.order_id in self.orders:
            return False
        self.orders[order.order_id] = Order(
            order.order_id, order.customer_id, Status.CHARGING, amount, order.currency, order.card, None
        )
        self.lines[order.order_id] = order.lines
        return True

    def lock(self, order_id: str) -> Order | None:
        return self.orders.get(order_id)

    def prices(self, product_ids: Sequence[str]) -> dict[str, int]:
        return {p: self._prices[p] for p in product_ids if p in self._prices}

    def reserve(self, lines: Sequence[Line]) -> list[str]:
        short = [line.product_id for line in lines if self.stock.get(line.product_id, 0) < line.quantity]
        if not short:
            for line in lines:
                self.stock[line.product_id] -= line.quantity
        return short

    def release(self, order_id: str) -> None:
        for line in self.lines[order_id]:
            self.stock[line.product_id] += line.quantity

    def settle(self, order_id: str, status: Status, **fields: Any) -> None:
        self.orders[order_id] = replace(
            self.orders[order_id], status=status, deadline=fields.get("deadline"), reason=fields.get("reason")
        )

    def note(self, order_id: str, step: str, outcome: str, event: Event, detail: str = "") -> None:
        self.notes.append((order_id, step, outcome))

    def flush(self) -> None:
        return None


class FakePayments:
    def __init__(self, decline: bool = False) -> None:
        self.decline = decline
        self.calls: list[tuple[str, str]] = []

    def charge(self, *, key: str, amount: int, currency: str, card: str, reference: str) -> Charge:
        self.calls.append(("charge", key))
        return Charge(False, None, "card_declined") if self.decline else Charge(True, "ch_1")

    def void(self, *, key: str, charge_key: str) -> str:
        self.calls.append(("void", key))
        return "blocked"


class Clock:
    def now(self) -> float:
        return 1000.0

    def sleep(self, seconds: float) -> None:
        return None


def placed(**data: Any) -> Event:
    body = {
        "order_id": "o1",
        "customer_id": "c1",
        "card": "tok",
        "items": [{"product_id": "a", "quantity": 2}],
    }
    return new_event("orders.order_placed", {**body, **data}, source="shop", id="placed-o1")


def step(type: str, **data: Any) -> Event:
    return new_event(type, {"order_id": "o1", **data}, source="shop", id=f"{type}-o1")


POLICY = saga.SagaPolicy(step_timeout=60.0)


def place(book: FakeBook, event: Event) -> list[Event]:
    return saga.place_order(event, orders=book, clock=Clock(), order_policy=POLICY)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"items": []}, "data.items"),
        ({"items": [{"product_id": "a", "quantity": 0}]}, "data.items.0.quantity"),
        ({"items": [{"product_id": "", "quantity": 1}]}, "data.items.0.product_id"),
        ({"customer_id": None}, "data.customer_id"),
        ({"card": 5}, "data.card"),
    ],
)
def test_bad_order_data_is_an_invalid_event_naming_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        place(FakeBook({"a": 1}, {"a": 5}), placed(**data))
    assert caught.value.field == field


def test_a_valid_order_reserves_stock_and_asks_for_payment() -> None:
    book = FakeBook({"a": 150}, {"a": 5})
    [request] = place(book, placed())
    assert (request.type, request.id, request.data) == (
        "orders.payment_requested",
        "o1/payment",
        {"order_id": "o1"},
    )
    assert book.stock == {"a": 3}
    assert (book.orders["o1"].status, book.orders["o1"].amount, book.orders["o1"].deadline) == (
        Status.CHARGING,
        300,
        1060.0,
    )
    assert place(book, replace_id(placed(), "placed-again")) == []  # the same order under another id


def replace_id(event: Event, new_id: str) -> Event:
    return new_event(event.type, event.data, source=event.source, id=new_id)


@pytest.mark.parametrize(
    ("prices", "stock", "reason"),
    [({"a": 1}, {"a": 1}, "out of stock: a"), ({}, {}, "unknown products: a")],
)
def test_an_order_that_cannot_be_served_is_cancelled_at_once(
    prices: dict[str, int], stock: dict[str, int], reason: str
) -> None:
    book = FakeBook(prices, stock)
    cancelled, invalidate = place(book, placed())
    assert (cancelled.type, cancelled.data["reason"]) == ("orders.order_cancelled", reason)
    assert invalidate.data == {"tags": ["customer:c1:orders"]}
    assert book.stock == stock


def test_a_charge_confirms_and_invalidates_the_customers_order_list() -> None:
    book, payments = FakeBook({"a": 150}, {"a": 5}), FakePayments()
    place(book, placed())
    confirmed, invalidate = saga.charge_payment(
        step("orders.payment_requested"), orders=book, payments=payments
    )
    assert (confirmed.type, confirmed.id, confirmed.data["charge_id"]) == (
        "orders.order_confirmed",
        "o1/confirmed",
        "ch_1",
    )
    assert (invalidate.type, invalidate.data) == ("cache.invalidate", {"tags": ["customer:c1:orders"]})
    assert payments.calls == [("charge", "order:o1:charge")]
    assert book.orders["o1"].status is Status.CONFIRMED
    # a second payment request (or a customer's cancellation) finds nothing to do
    assert saga.charge_payment(step("orders.payment_requested"), orders=book, payments=payments) == []
    assert saga.cancel_order(step("orders.cancel_requested"), orders=book) == []
    assert payments.calls == [("charge", "order:o1:charge")]


def test_a_decline_releases_the_stock_and_cancels() -> None:
    book, payments = FakeBook({"a": 150}, {"a": 5}), FakePayments(decline=True)
    place(book, placed())
    cancelled, _ = saga.charge_payment(step("orders.payment_requested"), orders=book, payments=payments)
    assert cancelled.data["reason"] == "payment declined: card_declined"
    assert book.stock == {"a": 5}


def test_cancellation_releases_then_asks_for_the_void_and_waits_for_an_unplaced_order() -> None:
    book, payments = FakeBook({"a": 150}, {"a": 5}), FakePayments()
    with pytest.raises(RetryableError):
        saga.cancel_order(step("orders.cancel_requested"), orders=book)
    place(book, placed())
    cancelled, _, void = saga.cancel_order(step("orders.cancel_requested"), orders=book)
    assert cancelled.data["reason"] == "cancelled by the customer"
    assert book.stock == {"a": 5}
    # The void goes out only once the cancellation is committed: a follow-up, not a call here.
    assert payments.calls == []
    assert (void.type, void.id) == ("orders.charge_void_requested", "o1/void")
    saga.void_charge(void, orders=book, payments=payments)
    assert payments.calls == [("void", "order:o1:void")]
    # Once cancelled, a late payment request charges nothing.
    assert saga.charge_payment(step("orders.payment_requested"), orders=book, payments=payments) == []
    assert payments.calls == [("void", "order:o1:void")]


def test_a_time_out_compensates_only_an_order_still_past_its_deadline() -> None:
    book = FakeBook({"a": 150}, {"a": 5})
    place(book, placed())  # deadline 1060, clock at 1000
    timed_out = step("orders.order_timed_out", status="charging")
    assert saga.time_out_order(timed_out, orders=book, clock=Clock()) == []
    book.orders["o1"] = replace(book.orders["o1"], deadline=999.0)
    cancelled, _, void = saga.time_out_order(timed_out, orders=book, clock=Clock())
    assert void.type == "orders.charge_void_requested"
    assert cancelled.data["reason"] == "timed out while charging"
    assert book.stock == {"a": 5}
