"""Tasks beat runs: the outbox relay, the release of delayed retries, history and DLQ retention."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Celery

from engine.records import Filter
from infra.publisher import CeleryPublisher
from tasks.parts import TaskParts

OUTBOX_GRACE = 10.0
"""Seconds the worker that wrote an outbox row has to publish it before the relay does."""


def register_maintenance_tasks(app: Celery, fleet: Callable[[], TaskParts]) -> None:
    @app.task(name="fleet.outbox.relay", ignore_result=True)
    def relay_outbox() -> int:
        container = fleet()
        relayed = container.outbox.relay(
            older_than=container.clock.now() - OUTBOX_GRACE,
            check=lambda event: container.publisher.messages([event]),
            publish=container.publisher.publish,
            dead_letters=container.dead_letters,
        )
        return relayed.published

    @app.task(name="fleet.history.prune", ignore_result=True)
    def prune_history() -> int:
        """Event history past its retention goes; dead letters are never touched here."""
        container = fleet()
        retention = container.settings.history_retention_days * 86400
        return int(container.history.prune(older_than=container.clock.now() - retention))

    @app.task(name="fleet.dead_letters.archive_old", ignore_result=True)
    def archive_old_dead_letters() -> int:
        """Retention of the DLQ: letters untouched for long are archived (kept, searchable,
        replayable), never deleted; only an operator's `fleet dlq purge` deletes."""
        container = fleet()
        cut = datetime.now(UTC) - timedelta(days=container.settings.dead_letter_archive_days)
        return int(container.dead_letters.archive(Filter(until=cut)))

    @app.task(name="fleet.retries.release_due", ignore_result=True)
    def release_due_retries() -> int:
        container = fleet()
        publisher: CeleryPublisher = container.publisher

        def send(message: dict[str, Any]) -> None:
            route = container.registry.route_for_task(message["task"])
            if route is not None:
                publisher.send(route, message["events"], attempt=int(message["attempt"]))

        return int(container.delayed.release_due(container.clock.now(), send))
