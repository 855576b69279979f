"""The idempotency ledger under concurrent transactions, on SQLite and PostgreSQL (what every
backend promises, the in-memory one included, is in test_stores.py)."""

from __future__ import annotations

import threading
import time

from sqlalchemy import Engine, insert, select

from infra.ledger import SqlLedger
from infra.schema import demo_deposits

A = ("src", "a")


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
