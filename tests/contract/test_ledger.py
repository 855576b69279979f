"""The idempotency ledger keeps its promises on SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
import time

from sqlalchemy import Engine, insert, select

from infra.ledger import SqlLedger
from infra.schema import demo_deposits

A, B, C = ("src", "a"), ("src", "b"), ("src", "c")


def test_record_returns_only_keys_not_done_before(store_engine: Engine) -> None:
    ledger = SqlLedger(store_engine)
    with store_engine.begin() as connection:
        assert ledger.record(connection, "h", [A, B], now=1.0) == {A, B}
    with store_engine.begin() as connection:
        assert ledger.record(connection, "h", [A, B, C], now=2.0) == {C}
        assert ledger.record(connection, "other-handler", [A], now=2.0) == {A}


def test_a_rolled_back_record_leaves_the_key_fresh(store_engine: Engine) -> None:
    ledger = SqlLedger(store_engine)
    try:
        with store_engine.begin() as connection:
            ledger.record(connection, "h", [A], now=1.0)
            raise RuntimeError("handler failed")
    except RuntimeError:
        pass
    with store_engine.begin() as connection:
        assert ledger.record(connection, "h", [A], now=2.0) == {A}


def test_concurrent_duplicates_take_effect_once(store_engine: Engine) -> None:
    """Two transactions race on one key: the loser waits for the winner, then finds it done."""
    ledger = SqlLedger(store_engine)
    barrier = threading.Barrier(2)

    def run(tag: str) -> None:
        barrier.wait()
        with store_engine.begin() as connection:
            if ledger.record(connection, "h", [A], now=time.time()):
                time.sleep(0.2)  # hold the key while the other one tries
                connection.execute(
                    insert(demo_deposits).values(account=tag, amount=1, event_id="a", recorded_at=0)
                )

    threads = [threading.Thread(target=run, args=(tag,)) for tag in ("t1", "t2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with store_engine.connect() as connection:
        assert len(list(connection.execute(select(demo_deposits.c.account)))) == 1


def test_a_live_claim_of_another_message_is_busy_until_its_lease_ends(store_engine: Engine) -> None:
    ledger = SqlLedger(store_engine)
    assert ledger.claim("h", [A], owner="m1", lease=30, now=100.0).claimed == {A}
    busy = ledger.claim("h", [A], owner="m2", lease=30, now=110.0)
    assert busy.claimed == set() and busy.busy == {A: 20.0}
    assert ledger.claim("h", [A], owner="m1", lease=30, now=111.0).claimed == {A}, (
        "its own redelivery takes over"
    )
    assert ledger.claim("h", [A], owner="m2", lease=30, now=150.0).claimed == {A}, (
        "an expired lease is taken over"
    )


def test_a_completed_claim_is_done_for_everyone(store_engine: Engine) -> None:
    ledger = SqlLedger(store_engine)
    ledger.claim("h", [A, B], owner="m1", lease=30, now=100.0)
    with store_engine.begin() as connection:
        assert ledger.complete(connection, "h", [A], owner="m1", now=101.0) == 1
        assert ledger.complete(connection, "h", [B], owner="someone-else", now=101.0) == 0
    later = ledger.claim("h", [A, B], owner="m2", lease=30, now=500.0)
    assert later.done == {A} and later.claimed == {B}
    assert ledger.is_done("h", A) and not ledger.is_done("h", C)


def test_a_released_claim_can_be_claimed_again_at_once(store_engine: Engine) -> None:
    ledger = SqlLedger(store_engine)
    ledger.claim("h", [A], owner="m1", lease=30, now=100.0)
    ledger.release("h", A, owner="m1")
    assert ledger.claim("h", [A], owner="m2", lease=30, now=101.0).claimed == {A}
