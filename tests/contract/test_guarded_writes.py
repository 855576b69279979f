"""One guarded statement: an event's rows and follow-ups go in only with its new ledger row."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from engine.records import EventWrites, digest
from infra.db import make_engine
from infra.guarded_writes import VALUES_UP_TO, SqlGuardedWrites
from infra.ledger import SqlLedger
from infra.schema import demo_deposits, outbox, processed_events

A, B = ("src", "a"), ("src", "b")


@pytest.fixture
def guarded(engine: Engine) -> Iterator[SqlGuardedWrites]:
    url = engine.url.render_as_string(hide_password=False)
    autocommit = make_engine(url, isolation_level="AUTOCOMMIT", pool_reset_on_return=None)
    yield SqlGuardedWrites(autocommit)
    autocommit.dispose()


def deposit_writes(key: tuple[str, str], *follow_ups: str) -> EventWrites:
    row = {"account": f"acc-{key[1]}", "amount": 5, "event_id": key[1], "recorded_at": 1.0}
    return EventWrites(digest(key), [(demo_deposits, [row])], list(follow_ups))


def deposits(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(connection.execute(select(demo_deposits.c.event_id)).scalars())


def count(engine: Engine, table: object) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_new_events_take_effect_with_their_ledger_rows_and_follow_ups(
    engine: Engine, guarded: SqlGuardedWrites
) -> None:
    applied = guarded.apply("h", [deposit_writes(A, '{"f": 1}', '{"f": 2}'), deposit_writes(B)], now=10.0)
    assert applied.fresh == {digest(A), digest(B)}
    assert len(applied.outbox_ids) == 2
    assert deposits(engine) == ["a", "b"]
    with engine.connect() as connection:
        assert sorted(connection.execute(select(outbox.c.event)).scalars()) == ['{"f": 1}', '{"f": 2}']
        assert connection.execute(select(processed_events.c.status)).scalars().all() == ["done", "done"]


def test_an_event_already_in_the_ledger_writes_nothing_and_its_neighbour_still_does(
    engine: Engine, guarded: SqlGuardedWrites
) -> None:
    guarded.apply("h", [deposit_writes(A, '{"f": 1}')], now=10.0)
    again = guarded.apply("h", [deposit_writes(A, '{"f": 1}'), deposit_writes(B, '{"f": 2}')], now=11.0)
    assert again.fresh == {digest(B)}
    assert len(again.outbox_ids) == 1
    assert deposits(engine) == ["a", "b"]
    assert count(engine, outbox) == 2
    assert guarded.apply("other-handler", [deposit_writes(A)], now=12.0).fresh == {digest(A)}, (
        "the ledger is per handler"
    )


def test_a_batch_sent_as_arrays_keeps_the_same_promise(engine: Engine, guarded: SqlGuardedWrites) -> None:
    keys = [("src", f"n{n:02}") for n in range(VALUES_UP_TO * 3)]
    guarded.apply("h", [deposit_writes(key) for key in keys[::4]], now=1.0)  # a few done before
    applied = guarded.apply("h", [deposit_writes(key, f'{{"n": "{key[1]}"}}') for key in keys], now=2.0)
    new = [key for n, key in enumerate(keys) if n % 4]
    assert applied.fresh == {digest(key) for key in new}
    assert len(applied.outbox_ids) == len(new) == count(engine, outbox)
    assert deposits(engine) == sorted(key[1] for key in keys), "each deposit once, old or new"


def test_the_classic_ledger_and_the_guarded_statement_agree(
    engine: Engine, guarded: SqlGuardedWrites
) -> None:
    with engine.begin() as connection:
        SqlLedger(engine).record(connection, "h", [A], now=1.0)
    assert guarded.apply("h", [deposit_writes(A)], now=2.0).fresh == set()
    assert deposits(engine) == []


@pytest.mark.parametrize("first_commits", [True, False])
def test_a_concurrent_duplicate_waits_for_the_first_and_follows_its_outcome(
    engine: Engine, guarded: SqlGuardedWrites, first_commits: bool
) -> None:
    """A transaction holds A's ledger row uncommitted: the statement blocks on the key, then finds
    it taken (the first committed) or free (it rolled back)."""
    result: list[set[str]] = []
    with engine.connect() as first:
        first.begin()
        SqlLedger(engine).record(first, "h", [A], now=1.0)
        racer = threading.Thread(
            target=lambda: result.append(guarded.apply("h", [deposit_writes(A)], 2.0).fresh)
        )
        racer.start()
        time.sleep(0.3)
        assert racer.is_alive(), "the statement must wait on the uncommitted key"
        with engine.connect() as probe:  # the waiting statement has written nothing visible
            assert probe.execute(text("SELECT count(*) FROM demo_deposits")).scalar_one() == 0
        if first_commits:
            first.commit()
        else:
            first.rollback()
        racer.join(timeout=10)
    assert result == [set() if first_commits else {digest(A)}]
    assert deposits(engine) == ([] if first_commits else ["a"])


def test_sqlite_keeps_the_transaction(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fleet.db'}")
    assert SqlGuardedWrites(engine).supported is False
    engine.dispose()
