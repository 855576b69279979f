"""The producer's Celery app: what building and sending the fleet's messages needs, no more.

Its messages are the ones the workers' app (workers/celery_app.py) sends from a producer: the
same task names, queues, serializer and headers (tests/contract/test_producer_messages.py
compares them), with no task registered and nothing read but `Settings`. Every broker step is
bounded by `publish_timeout`, and nothing is retried: a producer hears of an unavailable broker
at once, and decides itself what to do.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

import celeryconfig
from handlers.registry import Registry
from infra.rabbitmq_queues import fleet_queues, rabbitmq_conf
from infra.settings import Settings


def producer_app(settings: Settings, registry: Registry) -> Celery:
    app = Celery("fleet", set_as_current=False)
    app.config_from_object(celeryconfig)
    timeout = settings.publish_timeout
    transport_options: dict[str, Any] = {"max_retries": 0}  # kombu's ensure_connection: one try
    broker: dict[str, Any] = rabbitmq_conf(settings)
    if settings.broker_is_redis:
        # the web ingress builds messages with the fleet's transport (kombu's Sentinel one for sentinel://)
        broker = settings.redis_access().celery_broker_conf(settings.broker_url)
        transport_options |= broker.pop("transport_options") | {
            # Without a socket timeout a Redis that accepts and never answers holds the
            # channel's PING (and every send) forever.
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "priority_steps": [0],  # as the workers' app: one list per queue
        }
    else:
        transport_options |= {
            "confirm_publish": True,  # a send returns once RabbitMQ holds the message
            "connect_timeout": timeout,  # TCP connect and the AMQP handshake
            "read_timeout": timeout,  # the confirm
            "write_timeout": timeout,
        }
    prefix = settings.queue_prefix
    app.conf.update(
        broker_url=settings.broker_url,
        broker_transport_options=transport_options,
        broker_connection_timeout=timeout,
        broker_connection_retry=False,
        task_publish_retry=False,
        task_queues=fleet_queues(settings, [prefix + name for name in registry.queues()]),
        **broker,
    )
    return app
