"""The queues page shows the Service Bus queue (active and dead-lettered messages) when
FLEET_SERVICEBUS_* configures one, read from the Service Bus stand-in by the real SDK."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage
from sqlalchemy import Engine

from tests.integration.test_console_access import client_for, console_settings, log_in
from tests.support.servicebus_standin import ServiceBusStandIn
from workers.bootstrap import Runtime

pytestmark = pytest.mark.integration
ROW = re.compile(r'<tr data-active="(\d*)" data-dead-lettered="(\d+)">')


@pytest.fixture
def bus() -> Iterator[ServiceBusStandIn]:
    with ServiceBusStandIn() as standin:
        yield standin


@pytest.fixture
def queue() -> str:
    return f"console-{uuid.uuid4().hex[:8]}"


def runtime_for(redis_url: str, postgres_url: str, **servicebus: str) -> Runtime:
    return Runtime(console_settings(redis_url, postgres_url, **servicebus))


def counts_shown(runtime: Runtime) -> tuple[str, str] | None:
    client = client_for(runtime)
    log_in(client, "bob")
    page = client.get("/console/queues")
    assert page.status_code == 200, page.text
    match = ROW.search(page.text)
    return (match.group(1), match.group(2)) if match else None


def test_the_queues_page_counts_active_and_dead_lettered_messages(
    redis_url: str, postgres_url: str, engine: Engine, bus: ServiceBusStandIn, queue: str
) -> None:
    with ServiceBusClient.from_connection_string(bus.connection_string) as client:
        with client.get_queue_sender(queue) as sender:
            sender.send_messages([ServiceBusMessage(f"m-{n}", message_id=f"m-{n}") for n in range(7)])
        with client.get_queue_receiver(queue, max_wait_time=5) as receiver:
            received = receiver.receive_messages(max_message_count=3, max_wait_time=5)
            assert len(received) == 3
            for message in received[:2]:
                receiver.dead_letter_message(message, reason="console-test", error_description="poison")
            receiver.complete_message(received[2])

    runtime = runtime_for(
        redis_url, postgres_url, servicebus_connection_string=bus.connection_string, servicebus_queue=queue
    )
    try:
        assert counts_shown(runtime) == ("4", "2")  # 7 sent, 1 completed, 2 dead-lettered
        bus.go_down()
        client = client_for(runtime)
        log_in(client, "bob")
        page = client.get("/console/queues")
        assert page.status_code == 200  # the rest of the page still useful
        assert f"Service Bus queue {queue}: could not be read" in page.text
        assert not ROW.search(page.text)
    finally:
        runtime.fleet().close()


def test_a_sessions_queue_shows_its_dead_letters_only_and_an_unconfigured_one_no_section(
    redis_url: str, postgres_url: str, engine: Engine, bus: ServiceBusStandIn, queue: str
) -> None:
    runtime = runtime_for(
        redis_url,
        postgres_url,
        servicebus_connection_string=bus.connection_string,
        servicebus_queue=queue,
        servicebus_sessions="true",
    )
    try:
        assert counts_shown(runtime) == ("", "0")
    finally:
        runtime.fleet().close()
    unconfigured = runtime_for(redis_url, postgres_url)
    try:
        assert counts_shown(unconfigured) is None
    finally:
        unconfigured.fleet().close()
