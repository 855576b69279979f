"""The Redis stream transport: producers append, `fleet bridge redis-stream` hands events to real
worker processes; every valid event takes effect once, every poison entry is dead-lettered with
its reason, and a bridge killed mid-batch loses and doubles nothing."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest

from infra.transports.redis_stream import EVENT_FIELD
from tests.integration.conftest import FleetUnderTest
from tests.integration.helpers import deposit
from tests.support.processes import FleetProcess, wait_until

pytestmark = pytest.mark.integration
EVENTS = 10_000


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """Redis broker only: the stream's own behaviour does not depend on the broker, and the
    hand-over's durability on RabbitMQ is the publisher's (confirms), tested with it."""
    return redis_url


@pytest.fixture
def fleet_env(fleet_env: dict[str, str]) -> dict[str, str]:
    return {
        **fleet_env,
        "FLEET_REDIS_STREAM": f"events.{uuid.uuid4().hex[:8]}",
        "FLEET_REDIS_STREAM_CLAIM_IDLE": "3",  # a killed bridge's batch is taken over within seconds
    }


def _stream(fut: FleetUnderTest) -> str:
    return fut.env["FLEET_REDIS_STREAM"]


def _pending(fut: FleetUnderTest) -> int:
    summary: Any = fut.redis.xpending(_stream(fut), "fleet")
    return int(summary["pending"])


def _start_bridge(fut: FleetUnderTest) -> FleetProcess:
    bridge = fut.start("bridge", "redis-stream")
    bridge.wait_for_log("bridging stream", timeout=60)
    return bridge


POISON: dict[str, bytes] = {
    "bad-json": b'{"id": "p-1", "source": ',
    "no-source": json.dumps({"specversion": "1.0", "id": "p-2", "type": "demo.deposit_recorded"}).encode(),
    "unknown-type": json.dumps(
        {"specversion": "1.0", "id": "p-3", "source": "tests", "type": "demo.never_heard_of"}
    ).encode(),
    "oversized": deposit("p-4", note="x" * 300_000).to_json(),
    "not-utf8": b"\xff\xfe\x00garbage",
    "bad-data": deposit("p-5", amount=-5).to_json(),
}
REASONS = {
    "p-2": ("InvalidEvent", "source: required attribute is missing"),
    "p-3": ("UnknownEventType", "no handler is registered for event type 'demo.never_heard_of'"),
    "p-4": ("EventTooLarge", "over the limit of 262144 bytes"),
    "p-5": ("InvalidEvent", "data.amount: Input should be greater than 0"),
}


def test_every_valid_event_takes_effect_once_and_every_poison_entry_is_dead_lettered(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    producer = fut.fleet.transports.redis_stream_producer
    events = [deposit(f"rs-{n}") for n in range(EVENTS)]
    producer.publish(events[: EVENTS // 2])
    for body in POISON.values():
        fut.redis.xadd(_stream(fut), {EVENT_FIELD: body})
    fut.redis.xadd(_stream(fut), {b"something": b"else"})  # an entry without the event field
    producer.publish(events[EVENTS // 2 :])
    producer.publish(events[::20])  # 500 duplicates, redelivered by a careless producer
    fut.start_worker()
    _start_bridge(fut)

    wait_until(lambda: len(fut.deposits()) >= EVENTS, timeout=240, what="every deposit")
    wait_until(lambda: len(fut.letters()) >= len(POISON) + 1, 60, what="every poison entry dead-lettered")
    letters = fut.letters()
    assert set(fut.deposits().values()) == {1}, "no event took effect twice"
    assert set(fut.deposits()) == {event.id for event in events}
    assert all(letter.handler == "bridge.redis-stream" for letter in letters)
    by_id = {letter.event_id: letter for letter in letters}
    for event_id, (error_type, message) in REASONS.items():
        assert by_id[event_id].error_type == error_type
        assert message in by_id[event_id].error_message
    malformed = {letter.envelope for letter in letters if "malformed JSON" in letter.error_message}
    not_utf8 = "base64:" + base64.b64encode(POISON["not-utf8"]).decode()
    assert malformed == {POISON["bad-json"].decode(), not_utf8}, "kept as received"
    assert any("carries no event" in letter.error_message for letter in letters)
    assert len(letters) == len(POISON) + 1
    wait_until(lambda: _pending(fut) == 0, 30, what="every entry acknowledged")


def test_a_bridge_killed_mid_batch_loses_nothing_and_doubles_no_effect(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    events = [deposit(f"kill-{n}") for n in range(EVENTS)]
    fut.fleet.transports.redis_stream_producer.publish(events)
    left_pending = 0
    for _ in range(5):  # kill while a batch is read and not yet acknowledged
        bridge = _start_bridge(fut)
        wait_until(lambda: _pending(fut) > 0, 60, interval=0.005, what="a batch in hand")
        bridge.kill()
        left_pending = _pending(fut)
        if left_pending:
            break
    assert left_pending > 0, "the bridge was killed holding a batch"

    fut.start_worker()  # the killed bridge's hand-overs wait in the broker; its successor repeats them
    successor = _start_bridge(fut)
    wait_until(lambda: len(fut.deposits()) >= EVENTS, timeout=240, what="every deposit")
    # the dead bridge's hand-overs may all be handled before its batch has idled past the threshold
    wait_until(lambda: "claimed" in successor.log(), 30, what="the dead bridge's batch taken over")
    wait_until(lambda: _pending(fut) == 0, 30, what="every entry acknowledged")
    deposits = fut.deposits()
    assert set(deposits) == {event.id for event in events}, "nothing lost"
    assert set(deposits.values()) == {1}, "nothing doubled"
    assert fut.letters() == []


def test_the_cli_appends_to_the_stream_and_refuses_an_unknown_type(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    data = '{"account": "a-1", "amount": 5}'
    result = fut.cli(
        "publish", "demo.deposit_recorded", "--data", data, "--id", "c-1", "--to", "redis-stream"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "c-1"
    refused = fut.cli("publish", "demo.nope", "--data", "{}", "--to", "redis-stream")
    assert refused.returncode == 1
    assert "no handler is registered for event type 'demo.nope'" in refused.stderr
    entries = fut.redis.xrange(_stream(fut))
    assert len(entries) == 1
    event = json.loads(entries[0][1][EVENT_FIELD])
    assert (event["id"], event["type"], event["data"]["amount"]) == ("c-1", "demo.deposit_recorded", 5)


def test_the_stream_stays_near_its_bound(fleet_under_test: FleetUnderTest) -> None:
    fut = fleet_under_test
    producer = type(fut.fleet.transports.redis_stream_producer)(
        fut.redis, _stream(fut), registry=fut.fleet.registry, max_event_bytes=262144, maxlen=1000
    )
    producer.publish([deposit(f"b-{n}") for n in range(5000)])
    length = fut.redis.xlen(_stream(fut))
    assert 1000 <= length < 1500, f"MAXLEN ~ 1000 keeps about 1000 entries, not {length}"
