"""Consumer-side batching: the worker's consumer gathers the messages of a transactional route
that arrive together and runs them as one pool job, one transaction (docs/consumption.md).

A first delivery of a due message, shaped as the fleet's publisher sends it, is read straight
from the message (its JSON body, its headers) and gathered as it is. Any other message goes
through Celery's default strategy (a request: revocation, countdowns and rate limits as ever),
whose requests that would go to the pool go to `_Batcher.take` instead. A gathered batch is
handed over on the event loop's next turn, once no more messages arrived in the last one
(nothing waits for a batch to fill), in one share per free pool process; while every process
runs a batch, messages gather until one is done. One message alone, a redelivery, a retry:
today's path. The messages are acknowledged only after the batch committed; if it did not,
each runs alone through Celery's path, with its retries and dead letters.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from celery.app.trace import LOG_RECEIVED
from celery.worker import state
from celery.worker.strategy import default as default_strategy
from celery.worker.strategy import logger as strategy_log

from infra.redis_transport import ack_messages
from tasks.batches import Message, run_batch

log = logging.getLogger("fleet.batching")
RECHECK_SECONDS = 0.0005


def batching_strategy(limit: int) -> Callable[..., Any]:
    """A Celery task strategy (`Task.Strategy`) gathering up to `limit` messages a batch."""

    def strategy(task: Any, app: Any, consumer: Any, **kwargs: Any) -> Any:
        batcher = _Batcher(task.name, consumer, limit)
        handler = default_strategy(task, app, _Rerouted(consumer, batcher.take), **kwargs)
        batcher.handler = handler
        revoked = consumer.controller.state.revoked

        def on_message(message: Any, body: Any, ack: Any, reject: Any, callbacks: Any, **options: Any) -> Any:
            if body is None and not callbacks and batcher.gathers:
                taken = _first_delivery(message, task.name)
                if taken is not None and taken.id not in revoked:
                    taken.settle = (ack, reject)
                    batcher.gather(taken)
                    return None
            return handler(message, body, ack, reject, callbacks, **options)

        return on_message

    return strategy


@dataclass(slots=True)
class _Taken:
    """A message gathered for a batch: read straight from the message, or a Celery request."""

    message: Any
    id: str
    events: list[Any]
    due: float | None
    request: Any = None
    settle: tuple[Any, Any] = (None, None)
    """The consumer's acknowledge and reject callbacks, for a message that runs alone after all."""


class _Rerouted:
    """The consumer as the default strategy sees it, with its requests going to `take`."""

    def __init__(self, consumer: Any, take: Callable[[Any], None]) -> None:
        self._consumer = consumer
        self.on_task_request = take

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)


class _Batcher:
    handler: Callable[..., Any]
    """Celery's default strategy for this task, whose requests come back to `take`."""

    def __init__(self, task: str, consumer: Any, limit: int) -> None:
        self._task = task
        self._consumer = consumer
        self._limit = limit
        self._pending: list[_Taken] = []
        self._arrived = 0
        self._running = 0  # batches in the pool, not yet done
        self._alone_tags: set[Any] = set()  # messages gathered directly that must now run alone
        self._says_received = strategy_log.isEnabledFor(logging.INFO)

    @property
    def gathers(self) -> bool:
        return self._limit > 1 and self._consumer.hub is not None

    def take(self, request: Any) -> None:
        """A request of Celery's default strategy: gathered if it can be, else to the pool alone."""
        tag = request.message.delivery_tag
        if tag in self._alone_tags:
            self._alone_tags.discard(tag)
            self._consumer.on_task_request(request)
            return
        if not self.gathers or not _batchable(request):
            self._consumer.on_task_request(request)
            return
        events = list(request.kwargs["events"])
        self.gather(_Taken(request.message, str(request.id), events, _due(request.request_dict), request))

    def gather(self, taken: _Taken) -> None:
        self._pending.append(taken)
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
        gathered, self._pending = self._pending, []
        for share in spread(gathered, max(1, free)):
            if len(share) == 1:
                self._alone(share)
                continue
            self._running += 1
            if self._says_received:
                self._log_received(share)
            messages: list[Message] = [(taken.id, taken.events, taken.due) for taken in share]
            self._consumer.pool.apply_async(
                run_batch,
                args=(self._task, messages),
                callback=partial(self._done, share),
                error_callback=partial(self._failed, share),
            )

    def _log_received(self, share: list[_Taken]) -> None:
        """The line Celery logs for each message it receives, for those read without a request
        (a message that runs alone gets it from Celery's path)."""
        for taken in share:
            if taken.request is None:
                context = {"id": taken.id, "name": self._task, "eta": None}
                strategy_log.info(LOG_RECEIVED, context, extra={"data": context})

    def _done(self, share: list[_Taken], committed: Any) -> None:
        self._running -= 1
        self._flush_waiting()
        if committed is not True:
            self._alone(share)
            return
        try:
            ack_messages([taken.message for taken in share])
        except Exception:  # kept by the broker: redelivered, and found done in the ledger
            log.warning("could not acknowledge a batch of %d messages", len(share), exc_info=True)
        for taken in share:
            if taken.request is not None:
                taken.request.acknowledged = True
                state.task_ready(taken.request, successful=True)

    def _failed(self, share: list[_Taken], info: Any) -> None:
        self._running -= 1
        self._flush_waiting()
        log.warning("a batch of %d messages failed in the pool (%s); each runs alone", len(share), info)
        self._alone(share)

    def _flush_waiting(self) -> None:
        """A process is free: what gathered while all were busy goes to it as one batch."""
        if self._pending:
            self._flush()

    def _alone(self, share: list[_Taken]) -> None:
        """Each message on Celery's own path: a request of its own, its retries and dead letters."""
        for taken in share:
            if taken.request is not None:
                self._consumer.on_task_request(taken.request)
                continue
            message = taken.message
            ack, reject = taken.settle
            self._alone_tags.add(message.delivery_tag)
            try:
                self.handler(message, None, ack, reject, None)
            finally:
                self._alone_tags.discard(message.delivery_tag)


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


def _first_delivery(message: Any, task: str) -> _Taken | None:
    """The message as a batch takes it, read without building a Celery request; None unless it
    is a first delivery at its first attempt, due now, with no expiry, in the publisher's JSON."""
    headers = message.headers or {}
    if (
        headers.get("task") != task
        or headers.get("eta") is not None
        or headers.get("expires") is not None
        or headers.get("retries")
        or (message.delivery_info or {}).get("redelivered")
        or message.content_type != "application/json"
    ):
        return None
    body = message.body
    text = body.decode(message.content_encoding or "utf-8") if isinstance(body, bytes) else body
    if not isinstance(text, str) or '"__type__"' in text:  # kombu's tagged values: its own decoder
        return None
    try:
        args, kwargs, _embed = json.loads(text)
    except (ValueError, TypeError):
        return None  # Celery's path says what is wrong with it
    if (
        args
        or not isinstance(kwargs, dict)
        or kwargs.get("attempt")
        or not isinstance(kwargs.get("events"), list)
    ):
        return None
    return _Taken(message, str(headers.get("id")), kwargs["events"], _due(headers))


def _due(headers: dict[str, Any]) -> float | None:
    due = headers.get("fleet_due")  # a header of ours (infra/publisher.py)
    return float(due) if isinstance(due, int | float) else None
