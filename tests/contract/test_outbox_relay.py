"""The outbox relay on PostgreSQL: a row that can never be sent is quarantined, and two relays
running at once never publish one row twice."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Sequence

from sqlalchemy import Engine, func, insert, select

from handlers.envelope import Event, new_event
from handlers.registry import Registry
from infra.dead_letters import SqlDeadLetters
from infra.outbox import SqlOutbox
from infra.schema import dead_letters, outbox


def demo(event_id: str, event_type: str = "demo.deposit_recorded") -> str:
    event = new_event(event_type, {"account": "a", "amount": 1}, source="tests", id=event_id)
    return json.dumps(event.to_dict())


def write_rows(engine: Engine, bodies: Sequence[str]) -> None:
    with engine.begin() as connection:
        connection.execute(insert(outbox), [{"created_at": 1.0, "event": body} for body in bodies])


def routable(event: Event) -> None:
    Registry().route_for(event.type)


def rows_left(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(outbox)).scalar_one())


def test_a_row_that_can_never_be_sent_is_quarantined_and_the_rest_are_published(engine: Engine) -> None:
    write_rows(engine, [demo("ok-1"), demo("gone-1", "demo.retired_type"), "{not json", demo("ok-2")])
    published: list[str] = []

    relayed = SqlOutbox(engine).relay(
        older_than=time.time(),
        check=routable,
        publish=lambda events: published.extend(event.id for event in events),
        dead_letters=SqlDeadLetters(engine),
    )

    assert published == ["ok-1", "ok-2"]
    assert (relayed.published, relayed.quarantined) == (2, 2)
    assert rows_left(engine) == 0
    with engine.connect() as connection:
        letters = list(connection.execute(select(dead_letters).order_by(dead_letters.c.id)))
    assert [(letter.event_id, letter.error_type) for letter in letters] == [
        ("gone-1", "UnknownEventType"),
        ("outbox-3", "InvalidEvent"),
    ]
    assert letters[0].handler == "fleet.outbox.relay"
    assert letters[1].envelope == "{not json"


def test_two_relays_at_once_never_publish_a_row_twice(engine: Engine) -> None:
    """PostgreSQL only: two relays keep apart by `FOR UPDATE SKIP LOCKED` row locks, which SQLite
    lacks (it serialises writers per database; run one relay there) and the in-memory outbox
    needs no lock for (one process, one lock)."""
    write_rows(engine, [demo(f"row-{n}") for n in range(300)])
    published: Counter[str] = Counter()
    lock = threading.Lock()

    def slow_publish(events: Sequence[Event]) -> None:
        time.sleep(0.5)  # both relays hold their rows at the same time
        with lock:
            published.update(event.id for event in events)

    def relay() -> None:
        store = SqlOutbox(engine)
        while store.relay(time.time(), routable, slow_publish, SqlDeadLetters(engine), limit=100).published:
            pass

    relays = [threading.Thread(target=relay) for _ in range(2)]
    for thread in relays:
        thread.start()
    for thread in relays:
        thread.join(30)
    assert set(published) == {f"row-{n}" for n in range(300)}
    assert max(published.values()) == 1
    assert rows_left(engine) == 0
