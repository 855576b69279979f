"""The fleet's queues as RabbitMQ declares them: classic (the default) or quorum.

FLEET_RABBITMQ_QUEUE_TYPE=quorum declares every queue `x-queue-type: quorum` (replicated by Raft
on the cluster's nodes: a message a publisher confirm acknowledged survives the loss of a
minority of them) with `x-delivery-limit` (FLEET_RABBITMQ_DELIVERY_LIMIT): a message delivered
that many times without an acknowledgement (it kills every worker that takes it, past the
fleet's own attempt counting) is dead-lettered by the broker to `<queue>.poison`, a quorum
queue that nothing consumes, kept until an operator looks (`at-least-once` dead-lettering: never
dropped on the way). The fleet's own attempts and dead-letter queue work as on classic queues;
the limit is a backstop far above them.

Quorum queues also bring Celery's native delayed delivery: a retry's countdown waits in
RabbitMQ's `celery_delayed_*` exchanges and queues, not in a worker's memory, which needs the
queues on a topic exchange (`task_default_exchange_type`); and they refuse a global prefetch,
which Celery leaves out when `worker_detect_quorum_queues` (its default) finds them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from celery import bootsteps
from kombu import Queue

from infra.settings import Settings

POISON_SUFFIX = ".poison"


def is_quorum(settings: Settings) -> bool:
    return not settings.broker_is_redis and settings.rabbitmq_queue_type == "quorum"


def fleet_queues(settings: Settings, names: Iterable[str]) -> list[Queue]:
    """The queues `names` as this fleet's broker declares them."""
    if not is_quorum(settings):
        return [Queue(name, routing_key=name) for name in names]
    return [Queue(name, routing_key=name, queue_arguments=quorum_arguments(settings, name)) for name in names]


def quorum_arguments(settings: Settings, name: str) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": settings.rabbitmq_delivery_limit,
        "x-dead-letter-exchange": "",  # the default exchange: routed by queue name
        "x-dead-letter-routing-key": name + POISON_SUFFIX,
        # at-least-once dead-lettering needs reject-publish: a full queue refuses, never drops
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def poison_queue(name: str) -> Queue:
    return Queue(
        name + POISON_SUFFIX, routing_key=name + POISON_SUFFIX, queue_arguments={"x-queue-type": "quorum"}
    )


def rabbitmq_conf(settings: Settings) -> dict[str, Any]:
    """Celery settings for the queue type (the workers' and the producers' apps alike)."""
    if not is_quorum(settings):
        return {}
    return {
        # The fleet's own exchange, a topic one, for both apps (the default, `celery`, is shared by
        # every Celery app on the broker, as a direct exchange)
        "task_default_exchange": settings.queue_name("fleet"),
        "task_default_exchange_type": "topic",
        "worker_detect_quorum_queues": True,
    }


def poison_queues_step(names: list[str]) -> type[bootsteps.StartStopStep]:
    """A Celery consumer step declaring the quorum queues' poison queues before consuming, so
    what RabbitMQ dead-letters always has a queue to go to."""

    class PoisonQueues(bootsteps.StartStopStep):
        requires = ("celery.worker.consumer.connection:Connection",)

        def start(self, parent: Any) -> None:
            with parent.app.connection_for_write() as connection:
                channel = connection.default_channel
                for name in names:
                    poison_queue(name).bind(channel).declare()

    return PoisonQueues
