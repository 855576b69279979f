"""Consumer-side batching at default settings: a worker takes waiting single-event messages many
at a time, into one transaction, and still gives each event its effect exactly once."""

from __future__ import annotations

import random
from pathlib import Path

from handlers.envelope import Event
from tests.integration.conftest import FleetUnderTest
from tests.integration.helpers import deposit
from tests.support.processes import FleetProcess, wait_until
from tests.support.worker_metrics import events_per_transaction, start_with_metrics


def _publish_one_by_one(fut: FleetUnderTest, events: list[Event]) -> None:
    for event in events:
        fut.fleet.publisher.publish([event])


def test_a_prefilled_queue_is_drained_in_batches_and_each_event_takes_effect_once(
    fleet_under_test: FleetUnderTest, tmp_path: Path
) -> None:
    fut = fleet_under_test
    originals = [deposit(f"pre-{n}") for n in range(1500)]
    stream = originals + random.Random(3).sample(originals, 150)
    random.Random(4).shuffle(stream)
    _publish_one_by_one(fut, stream)  # 1,650 messages waiting before any worker runs

    port = start_with_metrics(fut, tmp_path)
    wait_until(lambda: len(fut.deposits()) == 1500, timeout=120, what="1500 deposits")
    assert max(fut.deposits().values()) == 1
    assert fut.letters() == []
    transactions, single, _ = wait_until(
        lambda: (found := events_per_transaction(port))[2] >= 1650 and found,
        timeout=30,
        what="every event counted",
    )
    assert transactions - single > 0, "some transactions must take more than one event"
    assert transactions < 1650 / 2, f"{transactions:.0f} transactions for 1,650 messages: hardly batched"


def test_a_poison_event_in_a_batch_is_dead_lettered_and_the_others_take_effect(
    fleet_under_test: FleetUnderTest, tmp_path: Path
) -> None:
    fut = fleet_under_test
    events = [deposit(f"mix-{n}") for n in range(200)]
    events[77] = deposit("mix-poison", amount=-5)  # a permanent error, raised inside the batch
    _publish_one_by_one(fut, events)

    port = start_with_metrics(fut, tmp_path)
    wait_until(lambda: len(fut.deposits()) == 199, timeout=60, what="the 199 good deposits")
    wait_until(fut.letters, timeout=30, what="the poison's dead letter")
    (letter,) = fut.letters()
    assert (letter.event_id, letter.error_type) == ("mix-poison", "InvalidEvent")
    assert "data.amount" in letter.error_message  # the model's check, naming the field
    assert "mix-poison" not in fut.deposits()
    assert max(fut.deposits().values()) == 1
    transactions, single, _ = events_per_transaction(port)
    assert transactions > single, "the others still go in batches around the fallback"


def test_a_worker_killed_mid_batch_leaves_every_event_to_take_effect_once(
    fleet_under_test: FleetUnderTest, tmp_path: Path
) -> None:
    fut = fleet_under_test
    default_lease = {"FLEET_VISIBILITY_TIMEOUT": "20"}  # the production lease, not the fixture's
    events = [deposit(f"kill-{n}", work_ms=3) for n in range(800)]  # ~0.3 s a batch of 100
    _publish_one_by_one(fut, events)

    fut.start_worker(env=default_lease)
    first: FleetProcess = fut.processes[-1]
    wait_until(lambda: len(fut.deposits()) >= 100, timeout=60, what="batches under way")
    first.kill()
    assert len(fut.deposits()) < 800, "the kill must land mid-drain"

    fut.start_worker(env=default_lease)
    wait_until(lambda: len(fut.deposits()) == 800, timeout=120, what="all 800 after the kill")
    assert max(fut.deposits().values()) == 1
    assert fut.letters() == []
