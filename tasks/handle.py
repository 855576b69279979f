"""One Celery task per route, named in the registry (`fleet.demo.record_deposit`), all alike.

Late acknowledgement: a message is acknowledged only after its events took effect, were
scheduled for retry or were dead-lettered; a worker that dies before that leaves it to be
redelivered. The task never lets an exception reach Celery, which would acknowledge (and so
lose) the message: when the database or Redis is unreachable it sends itself again later.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

from celery import Celery, Task

from handlers.registry import Idempotency, Route
from tasks.dispatch import Delivery, Dispatcher

log = logging.getLogger("fleet.tasks")
INFRA_RETRY_DELAY = 5.0


def register_route_task(app: Celery, route: Route, dispatcher: Callable[[], Dispatcher]) -> None:
    options: dict[str, Any] = {}
    if route.idempotency is Idempotency.CLAIM:
        # Killed before its lease ends, so no successor runs it while it still might.
        options["time_limit"] = max(1.0, route.lease * 0.9)

    @app.task(name=route.task, bind=True, queue=route.queue, max_retries=None, **options)
    def handle(self: Task[Any, Any], events: list[Any], attempt: int = 0) -> dict[str, int]:
        delivery = Delivery(message_id=str(self.request.id), task=route.task, attempt_base=int(attempt))
        try:
            outcome = dispatcher().handle(events, delivery)
        except Exception as exc:
            log.exception("infrastructure failure in %s; message sent again later", route.task)
            raise self.retry(exc=exc, countdown=INFRA_RETRY_DELAY * (1 + random.random())) from exc
        return outcome.__dict__
