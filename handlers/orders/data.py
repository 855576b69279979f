"""The order saga's event data, checked at the door (handlers/contracts.py); the saga reads it
through handlers/orders/model.py."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from handlers.contracts import EventData, Integer

Text = Annotated[str, Field(min_length=1, max_length=200)]


class Item(EventData):
    product_id: str = Field(min_length=1)
    quantity: Integer = Field(ge=1, le=10_000)


class OrderPlaced(EventData, event_type="orders.order_placed"):
    order_id: Text
    customer_id: Text
    card: Text
    currency: str | None = Field(default=None, min_length=1, max_length=3, description="EUR when absent")
    items: list[Item] = Field(min_length=1, max_length=100)


class OrderStep(EventData):
    """A step of an order's saga: the order it is about."""

    order_id: Text


class PaymentRequested(OrderStep, event_type="orders.payment_requested"):
    pass


class CancelRequested(OrderStep, event_type="orders.cancel_requested"):
    pass


class ChargeVoidRequested(OrderStep, event_type="orders.charge_void_requested"):
    pass


class OrderTimedOut(OrderStep, event_type="orders.order_timed_out"):
    status: str | None = Field(default=None, description="the step the order timed out in")


class OrderConfirmed(OrderStep, event_type="orders.order_confirmed"):
    customer_id: str | None = None
    amount: Integer | None = None
    currency: str | None = None
    charge_id: str | None = None


class OrderCancelled(OrderStep, event_type="orders.order_cancelled"):
    customer_id: str | None = None
    reason: str | None = None
