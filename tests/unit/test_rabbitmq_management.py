"""Reading RabbitMQ's management API: the virtual host a broker URL names, and head message ages."""

from __future__ import annotations

import pytest

from infra.rabbitmq_management import QueueStats, vhost_of
from workers.status import head_ages


@pytest.mark.parametrize(
    ("url", "vhost"),
    [
        ("amqp://guest:guest@127.0.0.1:5672//", "/"),
        ("amqp://guest:guest@127.0.0.1:5672/", "/"),
        ("amqp://guest:guest@127.0.0.1:5672", "/"),
        ("amqps://u:p@rabbit/fleet", "fleet"),
        ("amqp://u:p@rabbit/%2Fteam", "/team"),
    ],
)
def test_the_vhost_is_the_broker_urls_path(url: str, vhost: str) -> None:
    assert vhost_of(url) == vhost


def test_a_queues_age_is_its_head_messages_and_unknown_without_a_timestamp() -> None:
    stats = {
        "busy": QueueStats(ready=3, head_timestamp=940.0),
        "empty": QueueStats(ready=0, head_timestamp=None),
        "foreign": QueueStats(ready=2, head_timestamp=None),
    }
    ages = head_ages(stats, ["busy", "empty", "foreign", "never-declared"], now=1000.0)
    assert ages == {"busy": 60.0, "empty": 0.0, "never-declared": 0.0}
