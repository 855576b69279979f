"""The engine's stores keep the same promises on all three backends: in memory (the test twin's,
infra/memory/), SQLite (a file) and PostgreSQL. Ledger: record, claim, complete, release;
outbox: add, remove, relay; dead letters: add, find, replay.

Only what every backend offers is here; what is one backend's own stays beside it
(test_ledger.py: concurrent transactions; test_outbox_relay.py: rows no store writes, and
concurrent relays, which only PostgreSQL's row locks keep apart)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from engine.records import DeadLetter, Filter, fingerprint
from engine.replay import replay
from handlers.envelope import Event, new_event
from handlers.errors import UnknownEventType
from infra.db import make_engine
from infra.dead_letters import SqlDeadLetters
from infra.ledger import SqlLedger
from infra.memory.stores import (
    MemoryDatabase,
    MemoryDeadLetters,
    MemoryLedger,
    MemoryOutbox,
    MemoryTransactions,
)
from infra.migrate import upgrade
from infra.outbox import SqlOutbox
from infra.transactions import SqlTransactions

A, B, C = ("src", "a"), ("src", "b"), ("src", "c")


@dataclass
class Backend:
    name: str
    transactions: Any
    ledger: Any
    outbox: Any
    dead_letters: Any


def sql_backend(name: str, engine: Engine) -> Backend:
    return Backend(
        name, SqlTransactions(engine), SqlLedger(engine), SqlOutbox(engine), SqlDeadLetters(engine)
    )


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        database = MemoryDatabase()
        yield Backend(
            "memory",
            MemoryTransactions(database),
            MemoryLedger(database),
            MemoryOutbox(database),
            MemoryDeadLetters(),
        )
    elif request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'fleet.db'}")
        upgrade(engine)
        yield sql_backend("sqlite", engine)
        engine.dispose()
    else:
        yield sql_backend("postgres", request.getfixturevalue("engine"))  # migrated, truncated


# The ledger


def test_record_returns_only_keys_not_done_before(backend: Backend) -> None:
    with backend.transactions.begin() as transaction:
        assert backend.ledger.record(transaction, "h", [A, B], now=1.0) == {A, B}
    with backend.transactions.begin() as transaction:
        assert backend.ledger.record(transaction, "h", [A, B, C], now=2.0) == {C}
        assert backend.ledger.record(transaction, "other-handler", [A], now=2.0) == {A}


def test_a_rolled_back_record_leaves_the_key_fresh(backend: Backend) -> None:
    with pytest.raises(RuntimeError), backend.transactions.begin() as transaction:
        backend.ledger.record(transaction, "h", [A], now=1.0)
        raise RuntimeError("handler failed")
    with backend.transactions.begin() as transaction:
        assert backend.ledger.record(transaction, "h", [A], now=2.0) == {A}


def test_a_live_claim_of_another_message_is_busy_until_its_lease_ends(backend: Backend) -> None:
    ledger = backend.ledger
    assert ledger.claim("h", [A], owner="m1", lease=30, now=100.0).claimed == {A}
    busy = ledger.claim("h", [A], owner="m2", lease=30, now=110.0)
    assert busy.claimed == set() and busy.busy == {A: 20.0}
    assert ledger.claim("h", [A], owner="m1", lease=30, now=111.0).claimed == {A}, (
        "its own redelivery takes over"
    )
    assert ledger.claim("h", [A], owner="m2", lease=30, now=150.0).claimed == {A}, (
        "an expired lease is taken over"
    )


def test_a_completed_claim_is_done_for_everyone(backend: Backend) -> None:
    ledger = backend.ledger
    ledger.claim("h", [A, B], owner="m1", lease=30, now=100.0)
    with backend.transactions.begin() as transaction:
        assert ledger.complete(transaction, "h", [A], owner="m1", now=101.0) == 1
        assert ledger.complete(transaction, "h", [B], owner="someone-else", now=101.0) == 0
    later = ledger.claim("h", [A, B], owner="m2", lease=30, now=500.0)
    assert later.done == {A} and later.claimed == {B}
    assert ledger.is_done("h", A) and not ledger.is_done("h", C)


def test_a_completion_rolled_back_leaves_the_claim_open(backend: Backend) -> None:
    ledger = backend.ledger
    ledger.claim("h", [A], owner="m1", lease=30, now=100.0)
    with pytest.raises(RuntimeError), backend.transactions.begin() as transaction:
        ledger.complete(transaction, "h", [A], owner="m1", now=101.0)
        raise RuntimeError("the outbox write failed")
    assert not ledger.is_done("h", A)
    assert ledger.claim("h", [A], owner="m2", lease=30, now=200.0).claimed == {A}


def test_a_released_claim_can_be_claimed_again_at_once(backend: Backend) -> None:
    ledger = backend.ledger
    ledger.claim("h", [A], owner="m1", lease=30, now=100.0)
    ledger.release("h", A, owner="m1")
    assert ledger.claim("h", [A], owner="m2", lease=30, now=101.0).claimed == {A}


# The outbox


def deposit(event_id: str, event_type: str = "demo.deposit_recorded") -> Event:
    return new_event(event_type, {"account": "a", "amount": 1}, source="tests", id=event_id)


def routable(event: Event) -> None:
    if not event.type.startswith("demo."):
        raise UnknownEventType(event.type)


def test_follow_ups_are_kept_only_if_their_transaction_commits(backend: Backend) -> None:
    with pytest.raises(RuntimeError), backend.transactions.begin() as transaction:
        backend.outbox.add(transaction, [deposit("lost")], now=1.0)
        raise RuntimeError("handler failed")
    assert backend.outbox.backlog() == 0
    with backend.transactions.begin() as transaction:
        ids = backend.outbox.add(transaction, [deposit("kept-1"), deposit("kept-2")], now=1.0)
    assert len(set(ids)) == 2 and backend.outbox.backlog() == 2
    backend.outbox.remove(ids[:1])  # published right after commit
    assert backend.outbox.backlog() == 1


def test_the_relay_publishes_what_was_left_and_quarantines_what_can_never_be_sent(backend: Backend) -> None:
    with backend.transactions.begin() as transaction:
        backend.outbox.add(transaction, [deposit("ok-1"), deposit("gone-1", "retired.type")], now=1.0)
        backend.outbox.add(transaction, [deposit("young")], now=50.0)
    published: list[str] = []

    def publish(events: Sequence[Event]) -> None:
        published.extend(event.id for event in events)

    relayed = backend.outbox.relay(10.0, routable, publish, backend.dead_letters)
    assert published == ["ok-1"] and (relayed.published, relayed.quarantined) == (1, 1)
    [letter] = backend.dead_letters.find(Filter())
    assert (letter.handler, letter.error_type) == ("fleet.outbox.relay", "UnknownEventType")
    assert backend.outbox.backlog() == 1, "a row younger than `older_than` waits for its own publish"


def test_a_relay_whose_publish_fails_keeps_every_row(backend: Backend) -> None:
    with backend.transactions.begin() as transaction:
        backend.outbox.add(transaction, [deposit("kept-1"), deposit("kept-2")], now=1.0)

    def broker_down(events: Sequence[Event]) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        backend.outbox.relay(10.0, routable, broker_down, backend.dead_letters)
    assert backend.outbox.backlog() == 2


# Dead letters


def letter(event_id: str, error_type: str = "RetryableError", **changes: object) -> DeadLetter:
    fields: dict[str, object] = {
        "handler": "fleet.demo.x",
        "event_type": "demo.deposit_recorded",
        "source": "s",
        "event_id": event_id,
        "queue": "fleet.demo",
        "envelope": deposit(event_id).to_json().decode(),
        "attempts": 3,
        "error_type": error_type,
        "error_message": f"failed {event_id}",
        "traceback": "",
        "fingerprint": fingerprint(error_type, None),
    }
    return DeadLetter(**{**fields, **changes})  # type: ignore[arg-type]


def test_the_same_event_failing_again_updates_its_letter(backend: Backend) -> None:
    store = backend.dead_letters
    store.add(letter("e1", attempts=3))
    first = store.find(Filter())[0]
    store.mark_replayed([first.id])
    assert store.find(Filter()) == []
    store.add(letter("e1", attempts=5, error_message="failed again"))
    [again] = store.find(Filter(status=None))
    assert (again.id, again.attempts, again.status, again.error_message, again.replay_count) == (
        first.id,
        5,
        "dead",
        "failed again",
        1,
    )
    assert again.first_failed_at == first.first_failed_at


def test_find_narrows_by_type_handler_and_cause(backend: Backend) -> None:
    store = backend.dead_letters
    store.add(letter("r1"))
    store.add(letter("r2", handler="fleet.demo.y"))
    store.add(letter("p1", "InvalidEvent", event_type="demo.receipt_requested"))
    assert {row.event_id for row in store.find(Filter())} == {"r1", "r2", "p1"}
    assert [row.event_id for row in store.find(Filter(event_type="demo.receipt_requested"))] == ["p1"]
    assert [row.event_id for row in store.find(Filter(handler="fleet.demo.y"))] == ["r2"]
    cause = fingerprint("InvalidEvent", None)
    assert [row.event_id for row in store.find(Filter(fingerprint=cause))] == ["p1"]
    assert len(store.find(Filter(), limit=2)) == 2


def test_replay_sends_letters_again_with_their_ids_and_refuses_what_cannot_be_read(backend: Backend) -> None:
    store = backend.dead_letters
    store.add(letter("again"))
    store.add(letter("broken", envelope="{not json"))
    sent: list[str] = []

    class Publisher:
        def publish(self, events: Sequence[Event]) -> list[str]:
            sent.extend(event.id for event in events)
            return [event.id for event in events]

    report = replay(store, Publisher(), Filter())
    assert sent == ["again"]
    assert len(report.replayed) == 1 and len(report.refused) == 1
    [left] = store.find(Filter())
    assert left.event_id == "broken"
    assert [row.event_id for row in store.find(Filter(status="replayed"))] == ["again"]
