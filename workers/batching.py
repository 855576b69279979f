"""Consumer-side batching: the worker's consumer gathers the messages of a transactional route
that arrive together and runs them as one pool job, one transaction (docs/consumption.md).

Celery's default strategy still decodes each message into a request (revocation, countdowns and
rate limits as ever); a request that would go to the pool goes to `_Batcher.take` instead. A
gathered batch is handed over on the event loop's next turn, once no more messages arrived
in the last one (nothing waits for a batch to fill), in one share per free pool process;
while every process runs a batch, messages gather until one is done. One
message alone, a redelivery, a retry: today's path. The messages are acknowledged only after
the batch committed; if it did not, each runs alone through today's path, with its retries and
dead letters.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from celery.worker import state
from celery.worker.strategy import default as default_strategy

from infra.redis_transport import ack_messages
from tasks.batches import Message, run_batch

log = logging.getLogger("fleet.batching")
RECHECK_SECONDS = 0.0005


def batching_strategy(limit: int) -> Callable[..., Any]:
    """A Celery task strategy (`Task.Strategy`) gathering up to `limit` messages a batch."""

    def strategy(task: Any, app: Any, consumer: Any, **kwargs: Any) -> Any:
        batcher = _Batcher(task.name, consumer, limit)
        return default_strategy(task, app, _Rerouted(consumer, batcher.take), **kwargs)

    return strategy


class _Rerouted:
    """The consumer as the default strategy sees it, with its requests going to `take`."""

    def __init__(self, consumer: Any, take: Callable[[Any], None]) -> None:
        self._consumer = consumer
        self.on_task_request = take

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)


class _Batcher:
    def __init__(self, task: str, consumer: Any, limit: int) -> None:
        self._task = task
        self._consumer = consumer
        self._limit = limit
        self._pending: list[Any] = []
        self._arrived = 0
        self._running = 0  # batches in the pool, not yet done

    def take(self, request: Any) -> None:
        if self._limit <= 1 or self._consumer.hub is None or not _batchable(request):
            self._consumer.on_task_request(request)
            return
        self._pending.append(request)
        self._arrived += 1
        if len(self._pending) >= self._limit:
            self._flush()
        elif len(self._pending) == 1:
            self._consumer.hub.call_soon(self._flush_when_quiet, self._arrived)

    def _flush_when_quiet(self, seen: int) -> None:
        """Hand the batch over, unless messages still arrived since the last look (RabbitMQ
        delivers a prefetched window one message per turn of the loop). The next look is a
        timer, not `call_soon`: one added while the loop runs its ready callbacks would wait
        for the loop's poll, up to a second when no message comes."""
        if not self._pending:
            return
        if self._arrived != seen:
            self._consumer.hub.call_later(RECHECK_SECONDS, self._flush_when_quiet, self._arrived)
            return
        self._flush()

    def _flush(self) -> None:
        free = (self._consumer.pool.num_processes or 1) - self._running
        if free <= 0 and len(self._pending) < self._limit:
            return  # every process runs a batch: gather on, the next to finish hands these over
        requests, self._pending = self._pending, []
        for share in spread(requests, max(1, free)):
            if len(share) == 1:
                self._consumer.on_task_request(share[0])
                continue
            self._running += 1
            messages: list[Message] = [
                (str(request.id), list(request.kwargs["events"]), _due(request)) for request in share
            ]
            self._consumer.pool.apply_async(
                run_batch,
                args=(self._task, messages),
                callback=partial(self._done, share),
                error_callback=partial(self._failed, share),
            )

    def _done(self, requests: list[Any], committed: Any) -> None:
        self._running -= 1
        self._flush_waiting()
        if committed is not True:
            self._alone(requests)
            return
        try:
            ack_messages([request.message for request in requests])
        except Exception:  # kept by the broker: redelivered, and found done in the ledger
            log.warning("could not acknowledge a batch of %d messages", len(requests), exc_info=True)
        for request in requests:
            request.acknowledged = True
            state.task_ready(request, successful=True)

    def _failed(self, requests: list[Any], info: Any) -> None:
        self._running -= 1
        self._flush_waiting()
        log.warning("a batch of %d messages failed in the pool (%s); each runs alone", len(requests), info)
        self._alone(requests)

    def _flush_waiting(self) -> None:
        """A process is free: what gathered while all were busy goes to it as one batch."""
        if self._pending:
            self._flush()

    def _alone(self, requests: list[Any]) -> None:
        for request in requests:
            self._consumer.on_task_request(request)


def spread(requests: list[Any], processes: int) -> list[list[Any]]:
    """A gathered batch cut into one share per pool process, as even as can be: slow handlers
    keep the pool's parallelism, fast ones still commit many messages at once."""
    shares = max(1, min(processes, len(requests)))
    size, extra = divmod(len(requests), shares)
    cuts = [0]
    for n in range(shares):
        cuts.append(cuts[-1] + size + (1 if n < extra else 0))
    return [requests[start:end] for start, end in itertools.pairwise(cuts)]


def _batchable(request: Any) -> bool:
    """A first delivery at its first attempt, due now, shaped as the publisher sends it."""
    kwargs = request.kwargs or {}
    return (
        request.eta is None
        and not (request.delivery_info or {}).get("redelivered")
        and not kwargs.get("attempt")
        and isinstance(kwargs.get("events"), list)
    )


def _due(request: Any) -> float | None:
    due = request.request_dict.get("fleet_due")  # a header of ours (infra/publisher.py)
    return float(due) if isinstance(due, int | float) else None
