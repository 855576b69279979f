"""The order book in SQL: orders, lines, stock and the saga timeline.

Locks, so that steps never interleave and stock never deadlocks:
- an order's steps lock its row (SELECT ... FOR UPDATE) first and hold it to commit, so two
  events of one order run one after the other, whichever workers take them;
- every change of stock first takes one lock on the stock table (SHARE ROW EXCLUSIVE, which
  conflicts with itself), so stock changes run one transaction at a time. Without it, two
  batches of hundreds of orders, each locking product rows in its own order, would deadlock
  on any shared products; with it they queue, and a stock change is a short UPDATE. Releases
  are buffered and applied at flush, so a payment step never holds the stock lock during its
  HTTP call.
PostgreSQL only takes these locks; SQLite serializes writers anyway.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, select, text, update

from handlers.envelope import Event
from handlers.orders.model import Line, NewOrder, Order, Status
from infra.db import insert_for, insert_rows
from infra.orders.schema import order_lines, order_products, order_timeline, orders


class SqlOrderBook:
    """The saga's transaction port: one per transaction, flushed before commit."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._postgres = connection.dialect.name == "postgresql"
        self._stock_locked = False
        self._releases: list[str] = []
        self._notes: list[dict[str, Any]] = []

    def create(self, order: NewOrder, *, amount: int, now: float) -> bool:
        statement = (
            insert_for(self._connection, orders)
            .values(
                order_id=order.order_id,
                customer_id=order.customer_id,
                status=Status.CHARGING.value,
                amount=amount,
                currency=order.currency,
                card=order.card,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["order_id"])
            .returning(orders.c.order_id)
        )
        if self._connection.execute(statement).first() is None:
            return False
        rows = [
            {"order_id": order.order_id, "product_id": line.product_id, "quantity": line.quantity}
            for line in order.lines
        ]
        self._connection.execute(order_lines.insert(), rows)
        return True

    def lock(self, order_id: str) -> Order | None:
        query = select(orders).where(orders.c.order_id == order_id).with_for_update()
        row = self._connection.execute(query).first()
        if row is None:
            return None
        return Order(
            order_id=row.order_id,
            customer_id=row.customer_id,
            status=Status(row.status),
            amount=row.amount,
            currency=row.currency,
            card=row.card,
            deadline=row.deadline,
            reason=row.reason,
        )

    def prices(self, product_ids: Sequence[str]) -> dict[str, int]:
        query = select(order_products.c.product_id, order_products.c.price).where(
            order_products.c.product_id.in_(list(product_ids))
        )
        return {row.product_id: int(row.price) for row in self._connection.execute(query)}

    def reserve(self, lines: Sequence[Line]) -> list[str]:
        self._lock_stock()
        wanted = {line.product_id: line.quantity for line in lines}
        query = select(order_products.c.product_id, order_products.c.available).where(
            order_products.c.product_id.in_(list(wanted))
        )
        available = {row.product_id: row.available for row in self._connection.execute(query)}
        short = sorted(p for p, quantity in wanted.items() if available.get(p, 0) < quantity)
        if short:
            return short
        for product_id, quantity in sorted(wanted.items()):
            self._connection.execute(
                update(order_products)
                .where(order_products.c.product_id == product_id)
                .values(available=order_products.c.available - quantity)
            )
        return []

    def release(self, order_id: str) -> None:
        self._releases.append(order_id)

    def settle(
        self,
        order_id: str,
        status: Status,
        *,
        amount: int | None = None,
        reason: str | None = None,
        charge_id: str | None = None,
        deadline: float | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status.value, "deadline": deadline, "updated_at": time.time()}
        if amount is not None:
            values["amount"] = amount
        if reason is not None:
            values["reason"] = reason
        if charge_id is not None:
            values["charge_id"] = charge_id
        self._connection.execute(update(orders).where(orders.c.order_id == order_id).values(**values))

    def note(self, order_id: str, step: str, outcome: str, event: Event, detail: str = "") -> None:
        self._notes.append(
            {
                "order_id": order_id,
                "step": step,
                "outcome": outcome,
                "event_id": event.id,
                "event_type": event.type,
                "detail": detail,
            }
        )

    def flush(self) -> None:
        if self._releases:
            self._lock_stock()
            for order_id in self._releases:
                self._connection.execute(
                    update(order_products)
                    .where(order_lines.c.order_id == order_id)
                    .where(order_lines.c.product_id == order_products.c.product_id)
                    .values(available=order_products.c.available + order_lines.c.quantity)
                )
            self._releases = []
        if self._notes:
            now = time.time()
            for note in self._notes:
                note["at"] = now
            insert_rows(self._connection, order_timeline, self._notes)
            self._notes = []

    def _lock_stock(self) -> None:
        if self._postgres and not self._stock_locked:
            self._connection.execute(text("LOCK TABLE order_products IN SHARE ROW EXCLUSIVE MODE"))
            self._stock_locked = True


class SqlOrderDeadlines:
    """Orders past the deadline of their step, for the time-out job."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def overdue(self, now: float, limit: int) -> list[tuple[str, str, float]]:
        query = (
            select(orders.c.order_id, orders.c.status, orders.c.deadline)
            .where(orders.c.status == Status.CHARGING.value, orders.c.deadline < now)
            .order_by(orders.c.deadline)
            .limit(limit)
        )
        with self._engine.connect() as connection:
            return [(row.order_id, row.status, float(row.deadline)) for row in connection.execute(query)]


def put_products(engine: Engine, products: Mapping[str, tuple[int, int]]) -> None:
    """Set products' (price in cents, units available), adding those that are new."""
    statement = insert_for(engine, order_products)
    statement = statement.on_conflict_do_update(
        index_elements=["product_id"],
        set_={"price": statement.excluded.price, "available": statement.excluded.available},
    )
    rows = [{"product_id": p, "price": price, "available": units} for p, (price, units) in products.items()]
    with engine.begin() as connection:
        connection.execute(statement, rows)


def stock_levels(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        query = select(order_products.c.product_id, order_products.c.available)
        return {row.product_id: int(row.available) for row in connection.execute(query)}


def timeline(engine: Engine, order_id: str) -> tuple[Any, list[Any]]:
    """An order's row (None if unknown) and its timeline entries, oldest first."""
    with engine.connect() as connection:
        order = connection.execute(select(orders).where(orders.c.order_id == order_id)).first()
        entries = connection.execute(
            select(order_timeline).where(order_timeline.c.order_id == order_id).order_by(order_timeline.c.id)
        ).all()
        return order, list(entries)
