"""Bad input gets a clear error or a dead letter with its reason; nothing is lost, nothing stalls."""

from __future__ import annotations

import json
import pickle

import pytest

from handlers.envelope import new_event
from handlers.errors import EventTooLarge, InvalidEvent, UnknownEventType
from tests.integration.conftest import EVERY_BROKER, FleetUnderTest
from tests.integration.helpers import deposit, send_raw
from tests.support.processes import wait_until
from workers.status import queue_depths

pytestmark = EVERY_BROKER


def test_the_producer_refuses_bad_events_with_an_error_naming_the_problem(
    fleet_under_test: FleetUnderTest,
) -> None:
    publisher = fleet_under_test.fleet.publisher
    with pytest.raises(UnknownEventType, match=r"demo\.unheard_of"):
        publisher.publish([new_event("demo.unheard_of", {}, source="tests")])
    with pytest.raises(EventTooLarge, match="over the limit of 262144 bytes"):
        publisher.publish([deposit("big-1", note="x" * 300_000)])
    with pytest.raises(InvalidEvent, match=r"^source: must not be empty"):
        new_event("demo.deposit_recorded", {}, source="")


def test_the_cli_publishes_nothing_from_a_file_with_a_bad_line_and_names_each_problem(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    good = json.dumps(deposit("cli-good").to_dict())
    lines = "\n".join(
        [
            good,
            "{not json",
            json.dumps({"id": "x", "source": "s"}),
            json.dumps({**json.loads(good), "type": "nope"}),
        ]
    )
    result = fut.cli("publish", "--file", "-", stdin=lines)
    assert result.returncode == 1
    assert "nothing published" in result.stderr
    assert "line 2: malformed JSON" in result.stderr
    assert (
        "line 3: specversion: required attribute is missing; type: required attribute is missing"
        in result.stderr
    )
    assert queue_depths(fut.runtime)[fut.runtime.settings.queue_name("fleet.demo")] == 0, "nothing was sent"
    result = fut.cli(
        "publish",
        "--file",
        "-",
        stdin=good.replace("cli-good", "cli-2")
        + "\n"
        + json.dumps({**json.loads(good), "id": "cli-3", "type": "nope"}),
    )
    assert result.returncode == 1
    assert "no handler is registered for event type 'nope'" in result.stderr
    assert queue_depths(fut.runtime)[fut.runtime.settings.queue_name("fleet.demo")] == 0, (
        "not even the good one"
    )
    published = fut.cli("publish", "--file", "-", stdin=good)
    assert published.returncode == 0, published.stderr
    assert queue_depths(fut.runtime)[fut.runtime.settings.queue_name("fleet.demo")] == 1, (
        "the depth check sees sends"
    )


def test_the_cli_refuses_data_breaking_its_types_model_naming_the_field_and_sends_nothing(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    negative = json.dumps({"account": "a-1", "amount": -5})
    result = fut.cli("publish", "demo.deposit_recorded", "--data", negative)
    assert result.returncode == 1
    assert "data.amount: Input should be greater than 0" in result.stderr
    good = json.dumps(deposit("cli-good").to_dict())
    lines = good + "\n" + json.dumps({**json.loads(good), "id": "cli-bad", "data": {"account": "a-1"}})
    result = fut.cli("publish", "--file", "-", stdin=lines)
    assert result.returncode == 1
    assert "line 2: data.amount: required field is missing" in result.stderr
    assert queue_depths(fut.runtime)[fut.runtime.settings.queue_name("fleet.demo")] == 0, "nothing was sent"


def test_broken_messages_are_dead_lettered_on_first_sight_and_the_queue_keeps_flowing(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    worker = fut.start_worker(concurrency=1)
    runtime = fut.runtime
    task = "fleet.demo.record_deposit"
    queue = "fleet.demo"
    # An event missing a required attribute, sent around the producer's checks.
    bad_event = {k: v for k, v in deposit("no-source").to_dict().items() if k != "source"}
    runtime.fleet().publisher.send(runtime.registry.route_for("demo.deposit_recorded"), [bad_event])
    # Bytes that are not JSON, under a JSON content type.
    send_raw(
        runtime, queue, b"{not json", content_type="application/json", headers={"task": task, "id": "raw-1"}
    )
    # A content type the fleet never accepts (pickle).
    send_raw(
        runtime,
        queue,
        pickle.dumps({"x": 1}),
        content_type="application/x-python-serialize",
        headers={"task": task, "id": "raw-2"},
    )
    # A task nobody registered.
    send_raw(
        runtime,
        queue,
        json.dumps([[], {}, {}]).encode(),
        content_type="application/json",
        headers={"task": "fleet.nobody.home", "id": "raw-3", "lang": "py"},
    )
    fut.fleet.publisher.publish([deposit(f"after-{n}") for n in range(10)])

    wait_until(lambda: len(fut.deposits()) == 10, timeout=60, what="the good events behind the bad ones")
    letters = {
        letter.event_id: letter
        for letter in wait_until(lambda: len(fut.letters()) >= 4 and fut.letters(), 30)
    }
    assert set(letters) == {"no-source", "raw-1", "raw-2", "raw-3"}
    assert letters["no-source"].error_message == "source: required attribute is missing"
    assert letters["raw-1"].envelope == "{not json"
    assert letters["raw-2"].error_type == "ContentDisallowed"
    assert "fleet.nobody.home" in letters["raw-3"].error_message
    assert all(letter.attempts == 1 for letter in letters.values())
    assert worker.alive()
