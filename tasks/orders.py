"""Beat's order job: find orders stuck in a step past its deadline, and ask for their time-out.

The job only publishes `orders.order_timed_out` events; the compensation runs in the saga's
handler, under the order's row lock, so it cannot race the step it times out. An event's id is
derived from the order, its step and its deadline, so the job running again before the event
was handled publishes a duplicate the ledger drops.
"""

from __future__ import annotations

from collections.abc import Callable

from celery import Celery

from handlers.envelope import new_event
from tasks.parts import TaskParts

TIME_OUT_SOURCE = "fleet:orders"
BATCH = 1000


def register_order_tasks(app: Celery, fleet: Callable[[], TaskParts]) -> None:
    @app.task(name="fleet.orders.time_out", ignore_result=True)
    def time_out_orders() -> int:
        container = fleet()
        overdue = container.order_deadlines.overdue(container.clock.now(), limit=BATCH)
        events = [
            new_event(
                "orders.order_timed_out",
                {"order_id": order_id, "status": status, "deadline": deadline},
                source=TIME_OUT_SOURCE,
                id=f"{order_id}/timeout/{status}/{deadline:.3f}",
            )
            for order_id, status, deadline in overdue
        ]
        if events:
            container.publisher.publish(events)
        return len(events)
