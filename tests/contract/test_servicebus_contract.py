"""The Service Bus behaviour the fleet relies on, through the unmodified azure-servicebus SDK:
against the stand-in by default, and against a real namespace with `-m servicebus_live` and
FLEET_LIVE_SERVICEBUS_CONNECTION_STRING, FLEET_LIVE_SERVICEBUS_QUEUE and
FLEET_LIVE_SERVICEBUS_SESSION_QUEUE (existing queues, the second with sessions), so that the
stand-in can be checked against the service."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from azure.servicebus import NEXT_AVAILABLE_SESSION as NEXT_AVAILABLE
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSubQueue

from tests.support.servicebus_standin import ServiceBusStandIn


@dataclass(frozen=True)
class Namespace:
    connection_string: str
    queue: str
    session_queue: str
    max_delivery_count: int


@pytest.fixture(params=["standin", pytest.param("live", marks=pytest.mark.servicebus_live)])
def namespace(request: pytest.FixtureRequest) -> Iterator[Namespace]:
    if request.param == "live":
        connection_string = os.environ.get("FLEET_LIVE_SERVICEBUS_CONNECTION_STRING")
        if not connection_string:
            pytest.fail("-m servicebus_live needs FLEET_LIVE_SERVICEBUS_CONNECTION_STRING")
        yield Namespace(
            connection_string,
            os.environ["FLEET_LIVE_SERVICEBUS_QUEUE"],
            os.environ["FLEET_LIVE_SERVICEBUS_SESSION_QUEUE"],
            max_delivery_count=10,
        )
        return
    name = f"q-{uuid.uuid4().hex[:8]}"
    with ServiceBusStandIn(lock_duration=5, max_delivery_count=3, sessions={f"{name}-s"}) as bus:
        yield Namespace(bus.connection_string, name, f"{name}-s", max_delivery_count=3)


@pytest.fixture
def client(namespace: Namespace) -> Iterator[ServiceBusClient]:
    with ServiceBusClient.from_connection_string(namespace.connection_string) as sb_client:
        _drain(sb_client, namespace.queue)
        _drain(sb_client, namespace.queue, ServiceBusSubQueue.DEAD_LETTER)
        yield sb_client


def _drain(client: ServiceBusClient, queue: str, sub_queue: ServiceBusSubQueue | None = None) -> None:
    """A live queue may hold leftovers of an earlier run."""
    with client.get_queue_receiver(queue, sub_queue=sub_queue, max_wait_time=1) as receiver:
        while batch := receiver.receive_messages(max_message_count=100, max_wait_time=1):
            for message in batch:
                receiver.complete_message(message)


def _receive(client: ServiceBusClient, queue: str, count: int, **options: object) -> list[object]:
    found: list[object] = []
    with client.get_queue_receiver(queue, max_wait_time=2, **options) as receiver:  # type: ignore[arg-type]
        while len(found) < count and (
            batch := receiver.receive_messages(count - len(found), max_wait_time=2)
        ):
            found += batch
            for message in batch:
                receiver.complete_message(message)
    return found


def test_sends_single_and_batch_and_drops_a_duplicate_message_id(
    client: ServiceBusClient, namespace: Namespace
) -> None:
    run = uuid.uuid4().hex[:6]
    with client.get_queue_sender(namespace.queue) as sender:
        sender.send_messages(ServiceBusMessage("one", message_id=f"{run}-1"))
        batch = sender.create_message_batch()
        for n in (2, 3, 1):  # 1 again: a duplicate within the detection window
            batch.add_message(ServiceBusMessage(f"n{n}", message_id=f"{run}-{n}"))
        sender.send_messages(batch)
    received = _receive(client, namespace.queue, 4)
    assert sorted(str(m) for m in received) == ["n2", "n3", "one"]  # type: ignore[attr-defined]


def test_a_scheduled_message_arrives_when_due(client: ServiceBusClient, namespace: Namespace) -> None:
    with client.get_queue_sender(namespace.queue) as sender:
        (sequence,) = sender.schedule_messages(
            ServiceBusMessage("later"), datetime.now(UTC) + timedelta(seconds=3)
        )
    assert sequence > 0
    with client.get_queue_receiver(namespace.queue, max_wait_time=1) as receiver:
        assert receiver.receive_messages(max_wait_time=1) == [], "not before it is due"
        time.sleep(3)
        (message,) = receiver.receive_messages(max_wait_time=5)
        assert str(message) == "later"
        receiver.complete_message(message)


def test_peek_lock_abandon_redelivers_and_dead_letter_keeps_the_reason(
    client: ServiceBusClient, namespace: Namespace
) -> None:
    with client.get_queue_sender(namespace.queue) as sender:
        sender.send_messages([ServiceBusMessage("a"), ServiceBusMessage("b"), ServiceBusMessage("c")])
    with client.get_queue_receiver(namespace.queue, max_wait_time=2) as receiver:
        first = {str(m): m for m in receiver.receive_messages(3, max_wait_time=2)}
        assert set(first) == {"a", "b", "c"}
        before = first["a"].locked_until_utc
        time.sleep(1)
        assert receiver.renew_message_lock(first["a"]) > before, "the lock was renewed"
        receiver.complete_message(first["a"])
        receiver.abandon_message(first["b"])
        receiver.dead_letter_message(first["c"], reason="Poison", error_description="not an event")
        (again,) = receiver.receive_messages(3, max_wait_time=2)
        assert str(again) == "b"
        assert again.delivery_count == 1, "the abandoned one comes back, counted"
        receiver.defer_message(again)
        assert receiver.receive_messages(3, max_wait_time=1) == [], "completed, deferred: none left"
    with client.get_queue_receiver(
        namespace.queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER, max_wait_time=2
    ) as dlq:
        (peeked,) = dlq.peek_messages(10)
        assert (str(peeked), peeked.dead_letter_reason) == ("c", "Poison")
        assert peeked.dead_letter_error_description == "not an event"


def test_a_message_is_dead_lettered_at_the_max_delivery_count(
    client: ServiceBusClient, namespace: Namespace
) -> None:
    with client.get_queue_sender(namespace.queue) as sender:
        sender.send_messages(ServiceBusMessage("doomed"))
    with client.get_queue_receiver(namespace.queue, max_wait_time=2) as receiver:
        for _ in range(namespace.max_delivery_count):
            (message,) = receiver.receive_messages(max_wait_time=2)
            receiver.abandon_message(message)
        assert receiver.receive_messages(max_wait_time=1) == []
    (dead,) = _receive(client, namespace.queue, 1, sub_queue=ServiceBusSubQueue.DEAD_LETTER)
    assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"  # type: ignore[attr-defined]


def test_a_session_receiver_gets_its_session_in_order(client: ServiceBusClient, namespace: Namespace) -> None:
    with client.get_queue_sender(namespace.session_queue) as sender:
        for n in range(6):
            sender.send_messages(ServiceBusMessage(f"{n}", session_id=f"s{n % 2}"))
    with client.get_queue_receiver(namespace.session_queue, session_id="s1", max_wait_time=2) as receiver:
        got = receiver.receive_messages(10, max_wait_time=2)
        assert [str(m) for m in got] == ["1", "3", "5"]
        assert {m.session_id for m in got} == {"s1"}
        for message in got:
            receiver.complete_message(message)
    with client.get_queue_receiver(
        namespace.session_queue, session_id=NEXT_AVAILABLE, max_wait_time=2
    ) as receiver:
        assert receiver.session.session_id == "s0"
        got = receiver.receive_messages(10, max_wait_time=2)
        assert [str(m) for m in got] == ["0", "2", "4"]
        for message in got:
            receiver.complete_message(message)
