"""The Service Bus transport against the stand-in: `fleet publish --to servicebus` and the Python
API send, `fleet bridge servicebus` hands events to real worker processes; every valid event
takes effect once, poison goes to the Service Bus dead-letter sub-queue with its reason, and
neither a killed bridge nor an unreachable namespace loses or doubles anything."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage
from azure.servicebus.exceptions import MessageLockLostError

from infra.transports.servicebus_receiver import Receiver
from tests.integration.conftest import FleetUnderTest
from tests.integration.helpers import deposit
from tests.support.processes import FleetProcess, wait_until
from tests.support.servicebus_standin import ServiceBusStandIn
from workers.bridges.servicebus import locks_renewed

pytestmark = pytest.mark.integration
EVENTS = 10_000
LOCK_SECONDS = 4.0


@pytest.fixture
def bus() -> Iterator[ServiceBusStandIn]:
    with ServiceBusStandIn(lock_duration=LOCK_SECONDS, max_delivery_count=10) as standin:
        yield standin


@pytest.fixture
def broker_url(redis_url: str) -> str:
    return redis_url


@pytest.fixture
def fleet_env(fleet_env: dict[str, str], bus: ServiceBusStandIn) -> dict[str, str]:
    return {
        **fleet_env,
        "FLEET_SERVICEBUS_CONNECTION_STRING": bus.connection_string,
        "FLEET_SERVICEBUS_QUEUE": f"events-{uuid.uuid4().hex[:8]}",
        "FLEET_MAX_EVENT_BYTES": "8192",
    }


def _queue(fut: FleetUnderTest) -> str:
    return fut.env["FLEET_SERVICEBUS_QUEUE"]


def _start_bridge(fut: FleetUnderTest) -> FleetProcess:
    bridge = fut.start("bridge", "servicebus")
    bridge.wait_for_log("servicebus bridge: queue", timeout=60)
    return bridge


def _send_raw(bus: ServiceBusStandIn, queue: str, bodies: dict[str, bytes]) -> None:
    """What a producer that bypasses the fleet's API puts on the queue."""
    with (
        ServiceBusClient.from_connection_string(bus.connection_string) as client,
        client.get_queue_sender(queue) as sender,
    ):
        sender.send_messages([ServiceBusMessage(body, message_id=mid) for mid, body in bodies.items()])


POISON = {
    "p-json": (b'{"id": "p-1", "source": ', "InvalidEvent", "malformed JSON"),
    "p-source": (
        json.dumps({"specversion": "1.0", "id": "p-2", "type": "demo.deposit_recorded"}).encode(),
        "InvalidEvent",
        "source: required attribute is missing",
    ),
    "p-type": (
        json.dumps({"specversion": "1.0", "id": "p-3", "source": "t", "type": "demo.unheard_of"}).encode(),
        "UnknownEventType",
        "no handler is registered for event type 'demo.unheard_of'",
    ),
    "p-size": (deposit("p-4", note="x" * 10_000).to_json(), "EventTooLarge", "over the limit of 8192 bytes"),
    "p-data": (deposit("p-5", amount=-5).to_json(), "InvalidEvent", "data.amount: Input should be greater"),
}


def test_every_valid_event_takes_effect_once_and_poison_is_dead_lettered_with_its_reason(
    fleet_under_test: FleetUnderTest, bus: ServiceBusStandIn
) -> None:
    fut = fleet_under_test
    publisher = fut.fleet.transports.servicebus_publisher
    events = [deposit(f"sb-{n}") for n in range(EVENTS)]
    publisher.publish(events[: EVENTS // 2])
    _send_raw(bus, _queue(fut), {name: body for name, (body, _, _) in POISON.items()})
    publisher.publish(events[EVENTS // 2 :])
    publisher.publish(events[::50])  # resent: the service's duplicate detection drops them
    copies = {f"copy-{n}": events[n].to_json() for n in range(0, EVENTS, 97)}
    _send_raw(bus, _queue(fut), copies)  # same events under other message ids: the ledger's to drop
    fut.start_worker()
    _start_bridge(fut)

    wait_until(lambda: len(fut.deposits()) >= EVENTS, timeout=240, what="every deposit")
    wait_until(lambda: bus.store.count(_queue(fut)) == 0, 60, what="every message settled")
    deposits = fut.deposits()
    assert set(deposits) == {event.id for event in events}
    assert set(deposits.values()) == {1}, "no event took effect twice"
    letters = {
        letter.message_id: letter for letter in fut.fleet.transports.servicebus_dead_letters.browse(100)
    }
    assert set(letters) == set(POISON)
    for name, (_, reason, description) in POISON.items():
        assert letters[name].reason == reason
        assert description in letters[name].description
    assert fut.letters() == [], "poison stays in Service Bus, not in the fleet's DLQ"

    listed = fut.cli("bridge", "servicebus-dlq", "list")
    assert listed.returncode == 0, listed.stderr
    assert "UnknownEventType: type: no handler is registered" in listed.stdout
    shown = fut.cli("bridge", "servicebus-dlq", "show", str(letters["p-type"].sequence_number))
    assert json.loads(shown.stdout)["body"] == POISON["p-type"][0].decode()


def test_a_bridge_killed_mid_batch_loses_nothing_and_doubles_no_effect(
    fleet_under_test: FleetUnderTest, bus: ServiceBusStandIn
) -> None:
    fut = fleet_under_test
    events = [deposit(f"kill-{n}") for n in range(3000)]
    fut.fleet.transports.servicebus_publisher.publish(events)
    fut.start_worker()
    bridge = _start_bridge(fut)
    entity = bus.store.entity(_queue(fut))
    wait_until(lambda: len(entity.locks) > 0 and fut.deposits(), 60, interval=0.005, what="batches in hand")
    bridge.kill()
    assert len(fut.deposits()) < len(events), "killed mid-stream"
    assert entity.locks, "the bridge died holding locked messages"

    _start_bridge(fut)
    wait_until(lambda: len(fut.deposits()) >= len(events), timeout=240, what="every deposit")
    wait_until(lambda: bus.store.count(_queue(fut)) == 0, 60, what="every message completed")
    deposits = fut.deposits()
    assert set(deposits) == {event.id for event in events}, "nothing lost"
    assert set(deposits.values()) == {1}, "nothing doubled"


# The publisher's kept sender outlives the outage; the SDK reconnects it by itself and leaves the
# dropped connection's socket to the garbage collector (a ResourceWarning, nothing leaks for long).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_bridge_reconnects_by_itself_after_the_namespace_was_unreachable(
    fleet_under_test: FleetUnderTest, bus: ServiceBusStandIn
) -> None:
    fut = fleet_under_test
    first = [deposit(f"before-{n}") for n in range(2000)]
    fut.fleet.transports.servicebus_publisher.publish(first)
    fut.start_worker()
    bridge = _start_bridge(fut)
    wait_until(fut.deposits, 60, interval=0.01, what="the bridge at work")
    bus.go_down()
    wait_until(lambda: "reconnecting in" in bridge.log(), 60, what="the bridge noticing the outage")
    bus.come_back()
    later = [deposit(f"after-{n}") for n in range(2000)]
    fut.fleet.transports.servicebus_publisher.publish(later)
    wait_until(lambda: len(fut.deposits()) >= 4000, timeout=120, what="every deposit")
    deposits = fut.deposits()
    assert set(deposits) == {event.id for event in first + later}, "nothing lost"
    assert set(deposits.values()) == {1}, "nothing doubled"
    assert bridge.alive()


def test_a_resubmitted_dead_letter_takes_effect_and_the_cli_publishes_to_the_queue(
    fleet_under_test: FleetUnderTest, bus: ServiceBusStandIn
) -> None:
    fut = fleet_under_test
    data = '{"account": "a-1", "amount": 5}'
    sent = fut.cli("publish", "demo.deposit_recorded", "--data", data, "--id", "c-1", "--to", "servicebus")
    assert sent.returncode == 0, sent.stderr
    refused = fut.cli("publish", "demo.nope", "--data", "{}", "--to", "servicebus")
    assert "no handler is registered for event type 'demo.nope'" in refused.stderr
    with (
        ServiceBusClient.from_connection_string(bus.connection_string) as client,
        client.get_queue_receiver(_queue(fut), max_wait_time=5) as receiver,
    ):
        (message,) = receiver.receive_messages(max_message_count=10, max_wait_time=5)
        assert message.message_id == "c-1"
        assert message.content_type == "application/cloudevents+json"
        receiver.dead_letter_message(message, reason="OperatorHold", error_description="held by hand")
    fut.start_worker()
    _start_bridge(fut)
    resubmitted = fut.cli("bridge", "servicebus-dlq", "resubmit", "--all")
    assert resubmitted.stdout.strip() == "resubmitted 1", resubmitted.stderr
    wait_until(lambda: fut.deposits() == {"c-1": 1}, 60, what="the resubmitted deposit")
    assert fut.fleet.transports.servicebus_dead_letters.browse(10) == []


def test_a_slow_batch_keeps_its_locks_and_an_unrenewed_one_loses_them(bus: ServiceBusStandIn) -> None:
    queue = f"slow-{uuid.uuid4().hex[:8]}"
    _send_raw(bus, queue, {"slow-1": b"{}", "slow-2": b"{}"})
    with (
        ServiceBusClient.from_connection_string(bus.connection_string) as client,
        client.get_queue_receiver(queue, max_wait_time=5) as receiver,
    ):
        renewed, unrenewed = receiver.receive_messages(max_message_count=2, max_wait_time=5)
        with locks_renewed(Receiver(receiver), [renewed]):
            time.sleep(LOCK_SECONDS * 1.5)  # a hand-over slower than the lock
        receiver.complete_message(renewed)
        with pytest.raises(MessageLockLostError):
            receiver.complete_message(unrenewed)


def test_the_publisher_schedules_events_and_keys_sessions_by_partitionkey(
    fleet_under_test: FleetUnderTest, bus: ServiceBusStandIn
) -> None:
    fut = fleet_under_test
    due = datetime.now(UTC) + timedelta(seconds=3)
    event = deposit("sched-1").model_copy(update={"partitionkey": "acc-1"})
    assert fut.fleet.transports.servicebus_publisher.publish([event], at=due) == ["sched-1"]
    with (
        ServiceBusClient.from_connection_string(bus.connection_string) as client,
        client.get_queue_receiver(_queue(fut), max_wait_time=1) as receiver,
    ):
        assert receiver.receive_messages(max_wait_time=1) == [], "not before it is due"
        time.sleep(3)
        (message,) = receiver.receive_messages(max_wait_time=5)
        assert (message.message_id, message.session_id) == ("sched-1", "acc-1")
        assert message.scheduled_enqueue_time_utc is not None
        receiver.complete_message(message)
