"""Ports of the order saga."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from handlers.envelope import Event
from handlers.orders.model import Charge, Line, NewOrder, Order, Status


class OrderBook(Protocol):
    """Orders, lines, stock and the saga timeline, in the handler's transaction.

    `lock` takes the order's row lock (SELECT ... FOR UPDATE) until commit, so two events of one
    order never interleave their steps; stock changes take the stock lock before any product row.
    """

    def create(self, order: NewOrder, *, amount: int, now: float) -> bool:
        """Insert the order and its lines in state CHARGING; False if the order id exists."""
        ...

    def lock(self, order_id: str) -> Order | None: ...

    def prices(self, product_ids: Sequence[str]) -> dict[str, int]:
        """Unit prices (cents) of the products that exist."""
        ...

    def reserve(self, lines: Sequence[Line]) -> list[str]:
        """Take every line's quantity from stock, or nothing; returns the products short."""
        ...

    def release(self, order_id: str) -> None:
        """Give the order's lines back to stock (applied at flush, before commit)."""
        ...

    def settle(
        self,
        order_id: str,
        status: Status,
        *,
        amount: int | None = None,
        reason: str | None = None,
        charge_id: str | None = None,
        deadline: float | None = None,
    ) -> None: ...

    def note(self, order_id: str, step: str, outcome: str, event: Event, detail: str = "") -> None:
        """Add a timeline entry (`fleet orders show`)."""
        ...

    def flush(self) -> None: ...


class Payments(Protocol):
    """A payment provider. Both calls are idempotent by `key`: the same key gets the same
    result however often it is sent, and moves money at most once."""

    def charge(self, *, key: str, amount: int, currency: str, card: str, reference: str) -> Charge:
        """Raises `RetryableError` when the provider cannot answer (timeout, 5xx), `RateLimited`
        on 429; a decline is a result, not an error."""
        ...

    def void(self, *, key: str, charge_key: str) -> str:
        """Undo whatever the charge made with `charge_key` did (refund it, or refuse it if it has not
        arrived yet); returns what the provider did."""
        ...


class OrderDeadlines(Protocol):
    """Orders whose current step is past its deadline (for the time-out job)."""

    def overdue(self, now: float, limit: int) -> list[tuple[str, str, float]]:
        """(order id, status, deadline) of orders still in a step whose deadline passed."""
        ...
