"""A process keeps one Service Bus client and one sender per queue: many publishes cost one AMQP
connection, not a handshake each."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from azure.servicebus import ServiceBusClient

from handlers.registry import Registry
from infra.transports.servicebus import ServiceBusPublisher
from infra.transports.servicebus_client import ServiceBusConnection
from tests.integration.helpers import deposit
from tests.support.servicebus_standin import ServiceBusStandIn

pytestmark = pytest.mark.integration
PUBLISHES = 20


@pytest.fixture
def bus() -> Iterator[ServiceBusStandIn]:
    with ServiceBusStandIn() as standin:
        yield standin


def received(bus: ServiceBusStandIn, queue: str) -> set[str]:
    with (
        ServiceBusClient.from_connection_string(bus.connection_string) as client,
        client.get_queue_receiver(queue, max_wait_time=2) as receiver,
    ):
        return {str(message.message_id) for message in receiver.receive_messages(100, max_wait_time=2)}


def test_many_publishes_use_one_connection(bus: ServiceBusStandIn) -> None:
    queue = f"events-{uuid.uuid4().hex[:8]}"
    connection = ServiceBusConnection(connection_string=bus.connection_string, namespace=None)
    publisher = ServiceBusPublisher(connection, queue, registry=Registry(), max_event_bytes=65536)
    try:
        before = bus.connections_opened
        for n in range(PUBLISHES):
            publisher.publish([deposit(f"one-{n}")])
        assert bus.connections_opened - before == 1
        assert received(bus, queue) == {f"one-{n}" for n in range(PUBLISHES)}

    finally:
        connection.close()
