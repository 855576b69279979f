"""What the fleet relies on in RabbitMQ's quorum queues, on the local RabbitMQ: the queues are
declared as quorum queues, and a message delivered more often than the delivery limit goes to
its poison queue instead of vanishing (infra/rabbitmq_queues.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection

from infra.rabbitmq_queues import fleet_queues, poison_queue, rabbitmq_conf
from infra.settings import Settings
from tests.support.services import AMQP_URL, require


@pytest.fixture
def amqp() -> Iterator[Connection]:
    require("rabbitmq")
    with Connection(AMQP_URL) as connection:
        yield connection


def test_a_message_past_the_delivery_limit_is_dead_lettered_to_its_poison_queue(amqp: Connection) -> None:
    settings = Settings(broker_url=AMQP_URL, rabbitmq_queue_type="quorum", rabbitmq_delivery_limit=2)
    name = f"c{uuid.uuid4().hex[:8]}.fleet.demo"
    [queue] = fleet_queues(settings, [name])
    poison = poison_queue(name)
    channel = amqp.channel()
    try:
        bound, bound_poison = queue.bind(channel), poison.bind(channel)
        bound_poison.declare()
        bound.declare()
        assert bound.queue_arguments["x-queue-type"] == "quorum"
        amqp.Producer(channel).publish({"n": 1}, routing_key=name, exchange="")
        deliveries = 0
        while (message := _get(bound)) is not None:
            deliveries += 1
            message.reject(requeue=True)  # as a worker killed before its acknowledgement
            assert deliveries <= 5, "the delivery limit never took the message away"
        assert deliveries == 3, "delivered the limit's times, then once more, then dead-lettered"
        letter = _get(bound_poison)
        assert letter is not None and letter.decode() == {"n": 1}
        letter.ack()
    finally:
        for doomed in (name, poison.name):
            channel.queue_delete(doomed)
        channel.close()


def _get(queue: Any) -> Any:
    for _ in range(20):  # the requeue and the dead-lettering take a moment
        message = queue.get(no_ack=False)
        if message is not None:
            return message
        time.sleep(0.05)
    return None


def test_quorum_queues_sit_on_a_topic_exchange_for_celerys_native_delayed_delivery() -> None:
    settings = Settings(broker_url=AMQP_URL, rabbitmq_queue_type="quorum")
    assert rabbitmq_conf(settings)["task_default_exchange_type"] == "topic"
    assert rabbitmq_conf(Settings(broker_url=AMQP_URL)) == {}
