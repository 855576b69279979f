"""`fleet status`: one look at the fleet."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.registry import describe
from infra.dead_letters import Filter

if TYPE_CHECKING:
    from workers.bootstrap import Runtime


def queue_depths(runtime: Runtime) -> dict[str, int]:
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
