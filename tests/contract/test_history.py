"""The event history: written in batches, searched by id or correlation, pruned by age only."""

from __future__ import annotations

from sqlalchemy import Engine

from engine.records import Outcome, entry_row
from handlers.envelope import follow_up, new_event
from infra.history import SqlHistory


def test_a_timeline_shows_an_event_and_its_follow_ups_in_order(store_engine: Engine) -> None:
    history = SqlHistory(store_engine)
    cause = new_event("demo.deposit_recorded", {"amount": 1}, source="shop", id="order-1")
    effect = follow_up(cause, "demo.receipt_requested", {"to": "a@b"}, id="order-1/receipt")
    unrelated = new_event("demo.deposit_recorded", {"amount": 2}, source="shop", id="order-2")
    history.append(
        [
            entry_row(cause, Outcome.RETRY_SCHEDULED, handler="h", attempt=1, at=10.0, detail="boom"),
            entry_row(unrelated, Outcome.HANDLED, handler="h", attempt=1, at=11.0),
            entry_row(cause, Outcome.HANDLED, handler="h", attempt=2, at=12.0),
            entry_row(effect, Outcome.HANDLED, handler="r", attempt=1, at=13.0),
        ]
    )
    timeline = history.timeline("order-1")
    assert [(entry.event_id, entry.outcome, entry.attempt) for entry in timeline] == [
        ("order-1", "retry_scheduled", 1),
        ("order-1", "handled", 2),
        ("order-1/receipt", "handled", 1),
    ]
    assert timeline[0].detail == "boom"
    by_correlation = history.search(text="order-1")
    assert {entry.event_id for entry in by_correlation} == {"order-1", "order-1/receipt"}
    assert [entry.event_id for entry in history.search(outcome="retry_scheduled")] == ["order-1"]
    assert history.counts_since(11.0) == {"handled": 3}


def test_pruning_removes_only_entries_older_than_the_cut(store_engine: Engine) -> None:
    history = SqlHistory(store_engine)
    event = new_event("demo.deposit_recorded", {}, source="s", id="e")
    history.append(
        [entry_row(event, Outcome.HANDLED, handler="h", attempt=1, at=at) for at in (1.0, 2.0, 3.0)]
    )
    assert history.prune(older_than=2.5) == 2
    assert [entry.at for entry in history.search()] == [3.0]


def test_buffered_history_waits_out_a_database_outage_and_counts_what_it_gives_up(engine: Engine) -> None:
    from infra.db import make_engine
    from infra.history import BufferedHistory

    event = new_event("demo.deposit_recorded", {"account": "a", "amount": 1}, source="tests", id="kept-1")
    row = entry_row(event, Outcome.HANDLED, handler="h", attempt=1, at=1.0)
    dropped: list[int] = []
    away = make_engine("postgresql://postgres@127.0.0.1:1/nowhere")  # refused: the database is away
    buffered = BufferedHistory(SqlHistory(away), dropped=dropped.append)
    buffered.append([row, row])
    buffered.flush()
    assert dropped == [], "a database away is waited for, not given up on"
    buffered.close()
    assert dropped == [2], "what a leaving process could not write is counted"
    away.dispose()

    written = BufferedHistory(SqlHistory(engine), dropped=dropped.append)
    written.append([row])
    written.close()
    assert dropped == [2]
    assert [entry.event_id for entry in SqlHistory(engine).timeline("kept-1")] == ["kept-1"]
