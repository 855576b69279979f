"""The overview and queues pages: throughput, failures, queue depths, DLQ size, workers online;
the Celery queues, the Redis stream the bridge consumes and, when configured, the Service Bus queue.

Figures come from the database (event history), the broker and the workers on each request;
the page re-fetches its body every few seconds (static/console.js).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.records import Filter
from infra.console.activity import by_route, per_minute
from infra.console.broker_reads import BROKER_UNREACHABLE, stream_groups
from infra.console.servicebus_queue import QueueCounts, QueueUnreadable, peek_counts
from workers.console.auth import User
from workers.console.common import Console, blocking, viewer
from workers.status import oldest_ages, queue_depths, rabbit_queues

if TYPE_CHECKING:
    from workers.bootstrap import Runtime

MINUTES = 15
RATE_WINDOW = 300.0  # seconds the queues page averages its rates over
T = TypeVar("T")


def workers_online(runtime: Runtime) -> list[str]:
    replies = runtime.app.control.ping(timeout=1.0) or []
    return sorted(name for reply in replies for name in reply)


def from_broker(what: str, read: Callable[[], T], problems: list[str]) -> T | None:
    """`read()`, or None and a problem to show when the broker is down: the pages that read
    the database (dead letters, events) must stay useful exactly then."""
    try:
        return read()
    except BROKER_UNREACHABLE as exc:
        problems.append(f"{what}: the broker is unreachable ({exc})")
        return None


def overview(runtime: Runtime) -> dict[str, Any]:
    fleet = runtime.fleet()
    series = per_minute(fleet.engine, now=time.time(), minutes=MINUTES)
    zeros = [0] * MINUTES

    def line(*outcomes: str) -> list[int]:
        return [sum(values) for values in zip(*(series.get(o, zeros) for o in outcomes), strict=True)]

    handled, failed = line("handled", "duplicate"), line("retry_scheduled", "dead_lettered")
    attempts = sum(handled) + sum(failed)
    problems: list[str] = []
    return {
        "minutes": MINUTES,
        "handled": handled,
        "failed": failed,
        "dead_lettered": line("dead_lettered"),
        "published": line("published"),
        "failure_rate": sum(failed) / attempts if attempts else 0.0,
        "queues": from_broker("queue depths", lambda: queue_depths(runtime), problems) or {},
        "dead_letters": fleet.dead_letters.count(Filter()),
        "dead_letter_groups": len(fleet.dead_letters.groups(Filter())),
        "retries_waiting": fleet.delayed.size(),
        "outbox_backlog": fleet.outbox.backlog(),
        "history_dropped": from_broker("history drops", fleet.stores.dropped_history.total, problems),
        "workers": from_broker("workers", lambda: workers_online(runtime), problems) or [],
        "broker_problems": problems,
    }


def queue_rates(runtime: Runtime, problems: list[str]) -> list[dict[str, Any]]:
    """Per queue: depth now, and events in (put on it) and out (handled or failed) per minute."""
    name = runtime.settings.queue_name
    queue_of_task = {route.task: name(route.queue) for route in runtime.registry.routes()}
    rates: dict[str, dict[str, float]] = defaultdict(lambda: {"in": 0.0, "out": 0.0})
    per_minute_factor = 60.0 / RATE_WINDOW
    for _type, handler, outcome, count in by_route(runtime.fleet().engine, since=time.time() - RATE_WINDOW):
        if outcome in ("handled", "duplicate", "dead_lettered") and handler in queue_of_task:
            rates[queue_of_task[handler]]["out"] += count * per_minute_factor
    arrivals = from_broker("arrivals", lambda: runtime.fleet().arrivals.per_minute(RATE_WINDOW), problems)
    for queue, rate in (arrivals or {}).items():
        rates[queue]["in"] = rate
    rabbit = rabbit_queues(runtime)  # one management API read for depths and ages
    depths = from_broker("queue depths", lambda: queue_depths(runtime, rabbit), problems) or {}
    oldest = from_broker("oldest messages", lambda: oldest_ages(runtime, time.time(), rabbit), problems) or {}
    return [
        {"name": name, "depth": depth, "oldest": oldest.get(name), **rates[name]}
        for name, depth in depths.items()
    ]


def redis_streams(runtime: Runtime) -> list[dict[str, Any]]:
    """The Redis stream the bridge consumes: its length, and per consumer group what is pending
    (delivered, not acknowledged) and the lag (not yet delivered)."""
    return stream_groups(runtime.fleet().transports.stream_redis, runtime.settings.redis_stream)


def servicebus_queue(runtime: Runtime, problems: list[str]) -> QueueCounts | None:
    """The Service Bus queue's counts, when FLEET_SERVICEBUS_* names a namespace; else None."""
    settings = runtime.settings
    if not (settings.servicebus_connection_string or settings.servicebus_namespace):
        return None
    try:
        return peek_counts(
            runtime.fleet().transports.servicebus,
            settings.servicebus_queue,
            sessions=settings.servicebus_sessions,
        )
    except QueueUnreadable as exc:
        problems.append(f"Service Bus queue {settings.servicebus_queue}: could not be read ({exc})")
        return None


def sparkline(values: list[int], width: int = 240, height: int = 40) -> str:
    """The `points` of an SVG polyline drawing `values` left to right, scaled to the box."""
    top = max(values, default=0) or 1
    step = width / max(len(values) - 1, 1)
    return " ".join(
        f"{index * step:.1f},{height - 2 - (value / top) * (height - 4):.1f}"
        for index, value in enumerate(values)
    )


def routes(console: Console) -> list[Route]:
    runtime = console.runtime

    @viewer(console)
    async def overview_page(request: Request, user: User) -> Response:
        data = await blocking(overview, runtime)
        template = "overview_body.html" if request.query_params.get("partial") else "overview.html"
        return console.render(request, template, data)

    @viewer(console)
    async def queues_page(request: Request, user: User) -> Response:
        problems: list[str] = []
        queues = await blocking(queue_rates, runtime, problems)
        streams = await blocking(redis_streams, runtime)
        servicebus = await blocking(servicebus_queue, runtime, problems)
        context = {
            "queues": queues,
            "streams": streams,
            "servicebus": servicebus,
            "window": int(RATE_WINDOW),
            "problems": problems,
        }
        return console.render(request, "queues.html", context)

    return [Route("/", overview_page), Route("/queues", queues_page)]
