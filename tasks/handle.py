"""One Celery task per route, named in the registry (`fleet.demo.record_deposit`), all alike.

Late acknowledgement: a message is acknowledged only after its events took effect, were
scheduled for retry or were dead-lettered; a worker that dies before that leaves it to be
redelivered. The task never lets an exception reach Celery, which would acknowledge (and so
lose) the message: when the database, Redis or the broker fails, it sends the message again later
with a growing delay and no attempt spent.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

from celery import Celery, Task
from celery.exceptions import Reject

from engine.dispatch import Delivery, Dispatcher
from handlers.registry import Route
from infra.failures import is_infrastructure_failure
from tasks.batches import batch_options

log = logging.getLogger("fleet.tasks")
INFRA_RETRY_DELAY = 5.0


def register_route_task(
    app: Celery,
    route: Route,
    dispatcher: Callable[[], Dispatcher],
    batching: Any = None,
    queue_prefix: str = "",
) -> None:
    """`batching`: the consumer strategy that batches the route's messages (workers/batching.py);
    `queue_prefix`: this fleet's (FLEET_QUEUE_PREFIX), so that a retry of the task itself goes to
    the queue the broker knows (Celery routes it by the task's queue name).

    No time limit on the message: each event of a claim route is killed before its own lease
    ends (engine/effects.py `deadline`), however many events the message carries.
    """
    options: dict[str, Any] = batch_options(route, dispatcher, batching)

    @app.task(name=route.task, bind=True, queue=queue_prefix + route.queue, max_retries=None, **options)
    def handle(self: Task[Any, Any], events: list[Any], attempt: int = 0) -> dict[str, int]:
        due = getattr(self.request, "fleet_due", None)  # a header of ours (infra/publisher.py)
        delivery = Delivery(
            message_id=str(self.request.id),
            task=route.task,
            attempt_base=int(attempt),
            due=float(due) if isinstance(due, int | float) else None,
            redelivered=bool((self.request.delivery_info or {}).get("redelivered", True)),
        )
        current = dispatcher()
        try:
            outcome = current.handle(events, delivery)
        except Exception as exc:
            retries = int(self.request.retries or 0)
            # Doubling from 5 s up to the longest wait a broker may hold a message (eta_max).
            delay = min(current.eta_max, INFRA_RETRY_DELAY * 2 ** min(retries, 10)) * (
                0.5 + random.random() / 2
            )
            if is_infrastructure_failure(exc):
                log.warning(
                    "%s: %s: %s; message sent again in %.1fs", route.task, type(exc).__name__, exc, delay
                )
            else:  # a defect in the fleet itself: keep the message, shout, and back off
                log.critical(
                    "%s: unexpected failure; message sent again in %.1fs", route.task, delay, exc_info=True
                )
            try:
                raise self.retry(exc=exc, countdown=delay) from exc
            except Reject as rejected:
                # The retry could not be sent (the broker is down, or failing over): Celery would
                # reject the message without requeue, which drops it once a promoted replica takes
                # the reject. Requeued instead; if even that fails, the lease brings it back.
                raise Reject(rejected.args[0] if rejected.args else exc, requeue=True) from exc
        return outcome.counts()  # Celery reprs it for its log: the counts, not the history
