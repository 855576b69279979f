"""The pool side of consumer-side batching: a batch of one route's messages, as the worker's
consumer (workers/batching.py) hands it to a pool process, run by the engine (engine/batches.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import current_app

from engine.batches import handle_batch
from engine.dispatch import Delivery, Dispatcher
from handlers.registry import Idempotency, Route

Message = tuple[str, list[Any], float | None]
"""A batched message as it crosses to the pool: its id, its raw events, when it became due."""


def batch_options(route: Route, dispatcher: Callable[[], Dispatcher], strategy: Any) -> dict[str, Any]:
    """The route task's options that let the consumer batch it (transactional routes only)."""
    if strategy is None or route.idempotency is not Idempotency.TRANSACTIONAL:
        return {}

    def run(messages: list[Message]) -> bool:
        batch = [
            (events, Delivery(message_id=message_id, task=route.task, due=due, redelivered=False))
            for message_id, events, due in messages
        ]
        return handle_batch(dispatcher(), route.task, batch) is not None

    return {"Strategy": staticmethod(strategy), "run_batch": staticmethod(run)}


def run_batch(task_name: str, messages: list[Message]) -> bool:
    """A pool job: True once the batch took effect, False if each message must run alone."""
    task: Any = current_app.tasks[task_name]  # a route task, with `run_batch` (batch_options)
    return bool(task.run_batch(messages))
