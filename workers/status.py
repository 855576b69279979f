"""`fleet status`: one look at the fleet."""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.records import Filter
from handlers.registry import describe
from infra.metrics.schedules import ScheduleCollector
from infra.rabbitmq_management import QueueStats, RabbitManagement, vhost_of
from workers.schedules import jobs_in_force, schedule_state

if TYPE_CHECKING:
    from workers.bootstrap import Runtime


RabbitQueues = Callable[[], dict[str, QueueStats]]
"""A read of every queue from RabbitMQ's management API."""


def rabbit_queues(runtime: Runtime) -> RabbitQueues | None:
    """RabbitMQ's management API, when the broker is RabbitMQ and FLEET_RABBITMQ_MANAGEMENT_URL is
    set: one GET however many of the caller's readers (depths, ages) use it."""
    url = runtime.settings.rabbitmq_management_url
    if url is None or runtime.settings.broker_is_redis:
        return None
    return functools.cache(
        RabbitManagement(url.get_secret_value(), vhost_of(runtime.settings.broker_url)).queues
    )


def queue_depths(runtime: Runtime, rabbit: RabbitQueues | None = None) -> dict[str, int]:
    """Messages waiting in each queue; `rabbit`: a management API read to share (`rabbit_queues`)."""
    names = [queue.name for queue in runtime.app.conf.task_queues]
    if (rabbit := rabbit or rabbit_queues(runtime)) is not None:
        stats = rabbit()
        return {name: stats[name].ready if name in stats else 0 for name in names}
    depths: dict[str, int] = {}
    with runtime.app.connection_for_read() as connection:
        channel: Any = connection.default_channel
        for queue in runtime.app.conf.task_queues:
            try:
                depths[queue.name] = int(channel.queue_declare(queue=queue.name, passive=True).message_count)
            except Exception:  # not declared yet: nothing was ever sent to it
                depths[queue.name] = 0
                channel = connection.channel()
    return depths


def oldest_ages(runtime: Runtime, now: float, rabbit: RabbitQueues | None = None) -> dict[str, float]:
    """How long the oldest message of each queue has been due. Redis: read from the message at
    the queue's tail (kombu pushes on the left and pops on the right). RabbitMQ cannot be peeked:
    its management API's head message timestamp, when configured; else no ages."""
    if not runtime.settings.broker_is_redis:
        rabbit = rabbit or rabbit_queues(runtime)
        names = [queue.name for queue in runtime.app.conf.task_queues]
        return {} if rabbit is None else head_ages(rabbit(), names, now)
    client = runtime.fleet().stores.broker_redis
    names = [queue.name for queue in runtime.app.conf.task_queues]
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.lindex(name, -1)
    ages: dict[str, float] = {}
    for name, raw in zip(names, pipe.execute(), strict=True):
        if raw is None:
            ages[name] = 0.0
            continue
        with contextlib.suppress(ValueError, KeyError, TypeError):
            due = float(json.loads(raw)["headers"]["fleet_due"])
            ages[name] = max(0.0, now - due)
    return ages


def outbox_oldest_age(runtime: Runtime, now: float) -> float:
    """How long the oldest unpublished follow-up has waited: lag, which a count cannot show."""
    oldest = runtime.fleet().outbox.oldest_created_at()
    return 0.0 if oldest is None else max(0.0, now - oldest)


def head_ages(stats: dict[str, QueueStats], names: list[str], now: float) -> dict[str, float]:
    """Each queue's head message age: 0 when empty; left out when its head carries no timestamp
    (a message some other producer sent)."""
    ages: dict[str, float] = {}
    for name in names:
        queue = stats.get(name)
        if queue is None or queue.ready == 0:
            ages[name] = 0.0
        elif queue.head_timestamp is not None:
            ages[name] = max(0.0, now - queue.head_timestamp)
    return ages


def metric_probes(runtime: Runtime) -> dict[str, Callable[[], Any]]:
    """The readers of the state behind the scrape-time gauges (infra/metrics/fleet.py
    FleetStateCollector), each run on its own so one store down costs only its gauges."""
    fleet = runtime.fleet()
    rabbit = rabbit_queues(runtime)  # one management API read for both queue gauges
    return {
        "queue_depth": lambda: queue_depths(runtime, rabbit),
        "queue_oldest_age": lambda: oldest_ages(runtime, time.time(), rabbit),
        "dead_letters": lambda: {
            "dead": 0,
            "replayed": 0,
            "archived": 0,
            **fleet.dead_letters.counts_by_status(),
        },
        "dead_letter_oldest_age": lambda: {
            queue: max(0.0, time.time() - failed.timestamp())
            for queue, failed in fleet.dead_letters.oldest_dead_by_queue().items()
        },
        "outbox": fleet.outbox.backlog,
        "outbox_oldest_age": lambda: outbox_oldest_age(runtime, time.time()),
        "workers": lambda: len(fleet.stores.heartbeats.online()),
        "history_dropped": fleet.stores.dropped_history.total,
    }


def schedule_collector(runtime: Runtime) -> ScheduleCollector:
    """The schedules' gauges, read from Redis at scrape time, for the jobs in force then."""
    return ScheduleCollector(lambda: schedule_state(runtime), lambda: jobs_in_force(runtime, check=False))


def collect(runtime: Runtime) -> dict[str, Any]:
    fleet = runtime.fleet()
    replies = runtime.app.control.ping(timeout=1.0) or []
    return {
        **runtime.describe(),
        "workers": {name: "online" for reply in replies for name in reply} or "none online",
        "queues": queue_depths(runtime),
        "retries_waiting": fleet.delayed.size(),
        "outbox_backlog": fleet.outbox.backlog(),
        "dead_letters": fleet.dead_letters.count(Filter()),
        "dead_letter_groups": len(fleet.dead_letters.groups(Filter())),
        "routes": {
            route.type: "{task} on {queue}, {idempotency}, {max_attempts} attempts".format(**describe(route))
            for route in runtime.registry.routes()
        },
    }
