"""At-least-once delivery, exactly-once effects: duplicates and dead workers change nothing."""

from __future__ import annotations

import random

from handlers.envelope import Event
from tests.integration.conftest import FleetUnderTest
from tests.integration.helpers import deposit
from tests.support.processes import wait_until


def test_1000_events_with_a_tenth_sent_twice_each_take_effect_exactly_once(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    fut.start_worker(concurrency=2)
    originals = [deposit(f"dep-{n}", email="owner@example.com" if n % 10 == 0 else None) for n in range(1000)]
    rng = random.Random(7)
    stream: list[Event] = originals + rng.sample(originals, 100)
    rng.shuffle(stream)
    for start in range(0, len(stream), 50):  # some duplicates share a message, most do not
        fut.fleet.publisher.publish(stream[start : start + 50])

    wait_until(lambda: len(fut.deposits()) == 1000, timeout=90, what="1000 deposits")
    wait_until(
        lambda: fut.redis.llen(fut.fleet.domains.port("receipts").key) >= 100, timeout=30, what="100 receipts"
    )
    counts = fut.deposits()
    assert set(counts) == {event.id for event in originals}
    assert max(counts.values()) == 1
    receipts = [r.decode() for r in fut.redis.lrange(fut.fleet.domains.port("receipts").key, 0, -1)]
    assert len(receipts) == 100, "one receipt per deposit that asked for one, duplicates included"
    assert len(set(receipts)) == 100
    assert fut.letters() == []


def test_a_worker_killed_mid_flight_has_its_work_redelivered_and_each_effect_happens_once(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    # One message a transaction, so that the kill lands between commits (a kill mid-batch:
    # test_consume_batches.py).
    one_message_a_transaction = {"FLEET_CONSUME_BATCH": "1"}
    first = fut.start_worker(concurrency=2, env=one_message_a_transaction)
    events = [deposit(f"slow-{n}", work_ms=15) for n in range(200)]
    for start in range(0, 200, 5):  # 40 messages of 5 events, 75 ms each
        fut.fleet.publisher.publish(events[start : start + 5])

    wait_until(lambda: len(fut.deposits()) >= 30, timeout=60, what="work under way")
    first.kill()
    done_when_killed = len(fut.deposits())
    assert done_when_killed < 200, "the kill must land mid-flight"

    fut.start_worker(concurrency=2, env=one_message_a_transaction)
    wait_until(lambda: len(fut.deposits()) == 200, timeout=90, what="all 200 deposits after the kill")
    counts = fut.deposits()
    assert max(counts.values()) == 1, [k for k, v in counts.items() if v > 1]
    assert fut.letters() == []


def test_a_warm_shutdown_finishes_or_returns_in_flight_work(fleet_under_test: FleetUnderTest) -> None:
    fut = fleet_under_test
    # One message a transaction, so that running work (which a warm shutdown lets finish) is
    # not the whole backlog.
    one_message_a_transaction = {"FLEET_CONSUME_BATCH": "1"}
    first = fut.start_worker(concurrency=2, env=one_message_a_transaction)
    events = [deposit(f"warm-{n}", work_ms=10) for n in range(150)]
    for start in range(0, 150, 5):
        fut.fleet.publisher.publish(events[start : start + 5])
    wait_until(lambda: len(fut.deposits()) >= 20, timeout=60, what="work under way")
    assert first.stop(timeout=60) == 0, first.log()[-2000:]
    assert len(fut.deposits()) < 150, "the shutdown must land mid-flight"

    fut.start_worker(concurrency=2, env=one_message_a_transaction)
    wait_until(lambda: len(fut.deposits()) == 150, timeout=60, what="the rest after a warm restart")
    assert max(fut.deposits().values()) == 1
