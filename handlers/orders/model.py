"""The order saga's data: an order's states and lines, payment results, and the event shapes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from handlers.contracts import parse_model
from handlers.envelope import Event
from handlers.errors import InvalidEvent
from handlers.orders.data import OrderPlaced


class Status(StrEnum):
    """An order's place in the saga. Stock is reserved exactly while an order is CHARGING."""

    CHARGING = "charging"
    """Items valid, stock reserved, payment not yet settled."""
    CONFIRMED = "confirmed"
    """Charged and confirmed: final."""
    CANCELLED = "cancelled"
    """Compensated (stock released, any charge voided) or never started: final."""


@dataclass(frozen=True, slots=True)
class Line:
    product_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class NewOrder:
    order_id: str
    customer_id: str
    card: str
    currency: str
    lines: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class Order:
    """An order as its row holds it (the row locked for the transaction that read it)."""

    order_id: str
    customer_id: str
    status: Status
    amount: int
    currency: str
    card: str
    deadline: float | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Charge:
    """What the payment provider said: `succeeded`, or declined with a reason."""

    succeeded: bool
    charge_id: str | None = None
    reason: str | None = None


def charge_key(order_id: str) -> str:
    """The Idempotency-Key of an order's charge: every retry of the step sends the same one."""
    return f"order:{order_id}:charge"


def void_key(order_id: str) -> str:
    return f"order:{order_id}:void"


def _text(data: dict[str, Any], field: str, *, required: bool = True, limit: int = 200) -> str:
    value = data.get(field)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InvalidEvent(f"data.{field}", f"must be a non-empty string of at most {limit} characters")
    return value


def _data(event: Event) -> dict[str, Any]:
    if not isinstance(event.data, dict):
        raise InvalidEvent("data", "must be an object")
    return event.data


def order_id_of(event: Event) -> str:
    return _text(_data(event), "order_id")


def parse_new_order(event: Event) -> NewOrder:
    """The order an `orders.order_placed` event describes; malformed data is an `InvalidEvent`
    (dead-lettered: no retry can fix it). Unknown products are a business outcome, not bad data."""
    placed = parse_model(OrderPlaced, event.data)
    lines: dict[str, int] = {}
    for item in placed.items:
        lines[item.product_id] = lines.get(item.product_id, 0) + item.quantity  # one line per product
    return NewOrder(
        order_id=placed.order_id,
        customer_id=placed.customer_id,
        card=placed.card,
        currency=placed.currency or "EUR",
        lines=tuple(Line(product, quantity) for product, quantity in sorted(lines.items())),
    )
