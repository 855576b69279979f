"""The dispatcher's paths on real PostgreSQL and Redis, in this process (no Celery): which path a
message takes, and that each keeps exactly-once and the attempt count."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from engine.dispatch import Delivery, Outcome
from handlers.envelope import new_event
from infra.schema import dead_letters, demo_deposits
from tests.support.fleets import in_process_fleet
from workers.bootstrap import Fleet

TASK = "fleet.demo.record_deposit"


@pytest.fixture
def fleet(postgres_url: str, redis_url: str, engine: Engine) -> Iterator[Fleet]:
    fleet = in_process_fleet(redis_url, redis_url, postgres_url)
    yield fleet
    fleet.close()


def deposit(event_id: str, amount: int = 5) -> str:
    event = new_event("demo.deposit_recorded", {"account": "a-1", "amount": amount}, source="t", id=event_id)
    return event.to_json().decode()


def handle(fleet: Fleet, *bodies: str, **delivery: Any) -> Outcome:
    message = Delivery(message_id=delivery.pop("message_id", uuid.uuid4().hex), task=TASK, **delivery)
    return fleet.dispatcher.handle(list(bodies), message)


def rows(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_first_delivery_is_one_statement_and_its_duplicate_a_no_op(fleet: Fleet, engine: Engine) -> None:
    in_transaction: list[str] = []
    event.listen(fleet.engine, "before_cursor_execute", lambda *a: in_transaction.append(a[2]))

    first = handle(fleet, deposit("d-1"), redelivered=False)
    again = handle(fleet, deposit("d-1"), redelivered=False)

    assert (first.handled, first.duplicates, again.handled, again.duplicates) == (1, 0, 0, 1)
    assert rows(engine, demo_deposits) == 1
    assert in_transaction == [], "no BEGIN ... COMMIT: the guarded statement alone"


def test_a_batch_with_a_repeated_event_takes_each_effect_once(fleet: Fleet, engine: Engine) -> None:
    outcome = handle(fleet, deposit("b-1"), deposit("b-2"), deposit("b-1"), redelivered=False)
    assert (outcome.handled, outcome.duplicates) == (2, 1)
    assert rows(engine, demo_deposits) == 2


def test_a_duplicate_whose_handler_now_fails_stays_a_duplicate(fleet: Fleet, engine: Engine) -> None:
    """The handler runs before the ledger is asked; when it raises, the ledger decides first."""
    handle(fleet, deposit("x-1"), redelivered=False)
    outcome = handle(fleet, deposit("x-1", amount=-1), redelivered=False)
    assert (outcome.duplicates, outcome.dead, outcome.retried) == (1, 0, 0)
    assert rows(engine, dead_letters) == 0
    bad = handle(fleet, deposit("x-2", amount=-1), redelivered=False)
    assert bad.dead == 1, "a new event whose handler fails is still dead-lettered (InvalidEvent)"


def test_a_returned_message_that_never_started_is_charged_nothing(fleet: Fleet, engine: Engine) -> None:
    """Flagged redelivered (a warm shutdown gave it back) but never started: its last attempt runs."""
    outcome = handle(fleet, deposit("r-1"), redelivered=True, attempt_base=4)
    assert outcome.handled == 1
    assert rows(engine, demo_deposits) == 1


def test_a_message_whose_worker_died_is_charged_the_lost_run(fleet: Fleet, engine: Engine) -> None:
    message_id = uuid.uuid4().hex
    fleet.stores.attempts.start(message_id).result()  # it started once, and its worker died
    outcome = handle(fleet, deposit("k-1"), redelivered=True, attempt_base=4, message_id=message_id)
    assert (outcome.handled, outcome.dead) == (0, 1), "attempt 5 was lost with the worker: no 6th"
    with engine.connect() as connection:
        assert connection.execute(select(dead_letters.c.error_type)).scalar_one() == "WorkerLost"
