"""The Celery app: fixed behaviour from `celeryconfig`, queues and tasks from the routing table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Celery
from kombu import Queue

import celeryconfig
from handlers.registry import Registry
from infra.leases import lease_step, sweep_interval
from infra.settings import Settings
from tasks.handle import register_route_task
from tasks.maintenance import register_maintenance_tasks
from tasks.orders import register_order_tasks
from tasks.parts import TaskParts
from tasks.schedules import register_schedule_tasks
from workers.batching import batching_strategy
from workers.consumer import StrayEntrySink, dead_lettering_consumer

MAINTENANCE_QUEUE = "fleet.maintenance"


def make_app(
    settings: Settings,
    registry: Registry,
    fleet: Callable[[], TaskParts],
    beat_schedule: dict[str, dict[str, Any]],
) -> Celery:
    app = Celery("fleet", set_as_current=False)
    app.config_from_object(celeryconfig)
    transport_options: dict[str, Any]
    transport = None
    if settings.broker_is_redis:
        transport = "infra.redis_transport:Transport"  # kombu's, sharing one client per channel
        transport_options = {
            # A lease, renewed by every live worker for what it holds (infra/leases.py): a dead
            # worker's messages go back on their queues a lease and a sweep after it died.
            "visibility_timeout": settings.visibility_timeout,
            # kombu sweeps every interval x throttle seconds (100 s by default, whatever the
            # timeout): every tenth of the lease here, in every worker.
            "unacked_restore_interval": sweep_interval(settings.visibility_timeout),
            "unacked_restore_throttle": 1,
            # The sweep's lock: a worker killed while sweeping holds it up one lease, not 5 min.
            "unacked_mutex_expire": settings.visibility_timeout,
            # The fleet sends no priorities: one Redis list per queue, not four, so every BRPOP
            # and every wake-up watches a quarter of the keys.
            "priority_steps": [0],
            # A queue entry that is no message is dead-lettered raw, not raised in the event loop.
            "on_stray_entry": StrayEntrySink(lambda: fleet().dead_letters),
            # A read takes up to a batch of waiting messages in one round trip (docs/consumption.md).
            "consume_batch": settings.consume_batch,
        }
    else:
        transport_options = {"confirm_publish": True}  # RabbitMQ: a send returns once it is durable
    prefix = settings.queue_prefix
    queues = [prefix + name for name in (*registry.queues(), MAINTENANCE_QUEUE)]
    app.conf.update(
        broker_url=settings.broker_url,
        broker_transport=transport,
        broker_transport_options=transport_options,
        task_queues=[Queue(name, routing_key=name) for name in queues],
        # Room for a batch per pool process (docs/consumption.md).
        worker_prefetch_multiplier=max(settings.prefetch_multiplier, settings.consume_batch),
        worker_concurrency=settings.worker_concurrency,
        worker_send_task_events=settings.task_events,
        beat_schedule=beat_schedule,
        worker_consumer=dead_lettering_consumer(lambda: fleet().dead_letters),
        task_default_queue=prefix + MAINTENANCE_QUEUE,
        task_routes={
            "fleet.outbox.*": {"queue": prefix + MAINTENANCE_QUEUE},
            "fleet.retries.*": {"queue": prefix + MAINTENANCE_QUEUE},
            "fleet.history.*": {"queue": prefix + MAINTENANCE_QUEUE},
            "fleet.dead_letters.*": {"queue": prefix + MAINTENANCE_QUEUE},
        },
    )
    batching = batching_strategy(settings.consume_batch) if settings.consume_batch > 1 else None
    if settings.broker_is_redis:
        app.steps["consumer"].add(lease_step(settings.broker_url, settings.visibility_timeout))
    for route in registry.routes():
        register_route_task(app, route, lambda: fleet().dispatcher, batching)
    register_maintenance_tasks(app, fleet)
    register_order_tasks(app, fleet)
    register_schedule_tasks(app, fleet)
    return app
