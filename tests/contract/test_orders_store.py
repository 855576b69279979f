"""The SQL order book on PostgreSQL: stock under concurrent transactions, the order row lock."""

from __future__ import annotations

import threading
import time

from sqlalchemy import Engine

from handlers.envelope import new_event
from handlers.orders.model import Line, NewOrder, Status
from infra.orders.store import SqlOrderBook, SqlOrderDeadlines, put_products, stock_levels, timeline


def run_concurrently(count: int, work: object) -> None:
    threads = [threading.Thread(target=work, args=(n,)) for n in range(count)]  # type: ignore[arg-type]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


def test_concurrent_orders_for_the_last_items_never_take_more_than_there_is(engine: Engine) -> None:
    put_products(engine, {"last": (100, 5)})
    won: list[int] = []

    def buy(n: int) -> None:
        with engine.begin() as connection:
            book = SqlOrderBook(connection)
            if not book.reserve([Line("last", 1)]):
                won.append(n)
            time.sleep(0.01)  # hold the transaction open, so the others really wait

    run_concurrently(20, buy)
    assert len(won) == 5
    assert stock_levels(engine) == {"last": 0}


def test_batches_taking_products_in_opposite_orders_do_not_deadlock(engine: Engine) -> None:
    products = [f"p{n:02d}" for n in range(20)]
    put_products(engine, {p: (1, 100) for p in products})

    def batch(n: int) -> None:
        ordered = products if n % 2 else list(reversed(products))
        with engine.begin() as connection:  # one transaction for many orders, as a batch runs them
            book = SqlOrderBook(connection)
            for product in ordered:
                assert book.reserve([Line(product, 1)]) == []
                time.sleep(0.002)

    run_concurrently(6, batch)
    assert stock_levels(engine) == {p: 94 for p in products}


def test_create_lock_settle_release_and_the_timeline(engine: Engine) -> None:
    put_products(engine, {"a": (100, 10), "b": (50, 10)})
    order = NewOrder("o1", "c1", "tok_visa", "EUR", (Line("a", 2), Line("b", 3)))
    event = new_event("orders.order_placed", {}, source="shop", id="placed-o1")
    with engine.begin() as connection:
        book = SqlOrderBook(connection)
        assert book.create(order, amount=350, now=1.0)
        assert not book.create(order, amount=350, now=1.0)
        assert book.prices(["a", "b", "zzz"]) == {"a": 100, "b": 50}
        assert book.reserve(list(order.lines)) == []
        assert book.reserve([Line("a", 9)]) == ["a"]  # all or nothing
        book.settle("o1", Status.CHARGING, deadline=5.0)
        book.note("o1", "reserve", "reserved", event, "detail")
        book.flush()
    assert stock_levels(engine) == {"a": 8, "b": 7}
    assert SqlOrderDeadlines(engine).overdue(now=6.0, limit=10) == [("o1", "charging", 5.0)]
    assert SqlOrderDeadlines(engine).overdue(now=4.0, limit=10) == []
    with engine.begin() as connection:
        book = SqlOrderBook(connection)
        locked = book.lock("o1")
        assert locked is not None and (locked.status, locked.amount) == (Status.CHARGING, 350)
        book.release("o1")
        book.settle("o1", Status.CANCELLED, reason="why")
        book.flush()
    assert stock_levels(engine) == {"a": 10, "b": 10}
    row, entries = timeline(engine, "o1")
    assert (row.status, row.reason, row.deadline) == ("cancelled", "why", None)
    assert [(e.step, e.outcome, e.event_id, e.detail) for e in entries] == [
        ("reserve", "reserved", "placed-o1", "detail")
    ]


def test_a_locked_order_makes_the_next_step_wait(engine: Engine) -> None:
    put_products(engine, {"a": (100, 10)})
    with engine.begin() as connection:
        SqlOrderBook(connection).create(
            NewOrder("o1", "c1", "t", "EUR", (Line("a", 1),)), amount=100, now=1.0
        )
    order_of_events: list[str] = []
    first_has_lock = threading.Event()

    def step(n: int) -> None:
        if n == 1:
            first_has_lock.wait(10)
        with engine.begin() as connection:
            SqlOrderBook(connection).lock("o1")
            order_of_events.append(f"start {n}")
            if n == 0:
                first_has_lock.set()
                time.sleep(0.3)
            order_of_events.append(f"end {n}")

    run_concurrently(2, step)
    assert order_of_events == ["start 0", "end 0", "start 1", "end 1"]
