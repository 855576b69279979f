"""The producer: sends events to the fleet's queues, built from `Settings` alone.

Each call's events are validated and serialised in the caller's thread, then sent with the
events of every call waiting meanwhile (infra/group_commit.py): the events of one route share a
message. On Redis the messages are copies of Celery's (infra/redis_messages.py) pushed with one
LPUSH per queue, in one pipeline; on RabbitMQ kombu publishes each message and waits for its
confirm. A call returns once the broker holds its events, or raises `BrokerUnavailable`
(`PublishFailed`) naming the ids sent and not; every broker step is bounded by `publish_timeout`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import redis
from celery import Celery
from redis.backoff import NoBackoff
from redis.retry import Retry

from handlers.contracts import check_event
from handlers.domains import enabled_domains
from handlers.envelope import Event
from handlers.errors import PublishFailed
from handlers.registry import Registry, Route
from infra.arrivals import Arrivals
from infra.broker_errors import is_broker_unavailable, unavailable
from infra.group_commit import GroupCommit
from infra.producer_app import producer_app
from infra.publisher import CeleryPublisher, EncodedEvent
from infra.redis_messages import RedisMessages
from infra.settings import Settings

Message = tuple[Route, list[str]]


class _Stopped(Exception):
    """A send failed after `done` of its messages were on the broker."""

    def __init__(self, done: int, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.done = done
        self.cause = cause


class Producer:
    def __init__(
        self, settings: Settings, registry: Registry | None = None, arrivals: Arrivals | None = None
    ) -> None:
        """`arrivals`: where sent events are counted per queue, for the console's "in / min"."""
        self.settings = settings
        self.registry = registry or Registry.for_domains(enabled_domains(settings.domains))
        self.app: Celery = producer_app(settings, self.registry)
        self.publisher = CeleryPublisher(
            self.app,
            self.registry,
            max_event_bytes=settings.max_event_bytes,
            batch_size=settings.batch_size,
            queue_prefix=settings.queue_prefix,
            declare_queues=not settings.broker_is_redis,
            arrivals=arrivals,
            stamp_due_time=not settings.broker_is_redis,
        )
        self._sender: _RedisSender | _AmqpSender = (
            _RedisSender(self.publisher, settings)
            if settings.broker_is_redis
            else _AmqpSender(self.publisher, self.app)
        )
        self._group: GroupCommit[EncodedEvent] = GroupCommit(self._send_group)
        self._pid = os.getpid()
        self.check_data = settings.check_data
        """Off only to measure what the check costs (bench/data_check.py turns it on and off)."""

    def publish(self, events: Sequence[Event]) -> list[str]:
        """Validate all, then send all; the ids in order, once the broker holds every event.

        Raises `InvalidEvent` (data breaking its route's model, handlers/contracts.py),
        `UnknownEventType` or `EventTooLarge` before sending anything,
        `BrokerUnavailable` when the broker refused, dropped or did not answer.
        """
        if os.getpid() != self._pid:
            raise RuntimeError("a Producer is not shared across fork: make one in each process")
        if self.check_data:
            for event in events:
                check_event(self.registry.route_for(event.type), event)
        with self.publisher.sending(events) as traced:
            encoded = self.publisher.encode(traced)
            if encoded:
                self._group.submit(encoded)
        return [event.id for event in events]

    def close(self) -> None:
        self._sender.close()
        self.app.close()  # its pooled broker connections

    def _send_group(self, calls: list[Sequence[EncodedEvent]]) -> list[BaseException | None]:
        grouped = self.publisher.group([event for call in calls for event in call])
        try:
            self._sender.send([(route, [event.text for event in chunk]) for route, chunk in grouped])
        except _Stopped as stopped:
            sent = {event.id for _, chunk in grouped[: stopped.done] for event in chunk}
            return [_failure(stopped.cause, call, sent) for call in calls]
        self.publisher.count_sent([event for call in calls for event in call])
        return [None] * len(calls)


def _failure(cause: BaseException, call: Sequence[EncodedEvent], sent: set[str]) -> Exception:
    ids = [event.id for event in call]
    was_sent = tuple(i for i in ids if i in sent)
    unsent = tuple(i for i in ids if i not in sent)
    error = (
        unavailable(cause, sent=was_sent, unsent=unsent)
        if is_broker_unavailable(cause)
        else PublishFailed(
            f"publishing failed: {type(cause).__name__}: {cause}", sent=was_sent, unsent=unsent
        )
    )
    error.__cause__ = cause
    return error


class _RedisSender:
    def __init__(self, publisher: CeleryPublisher, settings: Settings) -> None:
        self._messages = RedisMessages(publisher)
        timeout = settings.publish_timeout
        self._access = settings.redis_access()
        self._wait = self._access.wait_replicas()
        self._client = self._access.client(
            settings.broker_url,
            # a WAIT for the replicas may take its own timeout on top
            socket_timeout=timeout + (self._access.replica_timeout if self._wait else 0),
            socket_connect_timeout=timeout,
            # One more try on a dropped connection (a pooled one Redis closed while idle); none
            # after a timeout, which would double the wait on a broker that does not answer.
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        )

    def send(self, messages: list[Message]) -> None:
        try:
            sends = self._messages.build_messages(messages)  # a route's first: a kombu channel
            by_queue: dict[str, list[str]] = {}
            for key, payload in sends:
                by_queue.setdefault(key, []).append(payload)
            if len(by_queue) == 1 and self._wait is None:  # the usual case: one command, no pipeline
                [(key, payloads)] = by_queue.items()
                self._client.lpush(key, *payloads)
            elif by_queue:
                with self._client.pipeline(transaction=False) as pipe:
                    for key, payloads in by_queue.items():
                        pipe.lpush(key, *payloads)
                    if self._wait is not None:  # on the same connection: the replicas hold these pushes
                        pipe.execute_command("WAIT", *self._wait)  # type: ignore[no-untyped-call]
                    replies = pipe.execute()
                if self._wait is not None:
                    self._access.replicated(replies[-1])
        except Exception as exc:  # a pipeline's commands may have run: none is counted as sent
            raise _Stopped(0, exc) from exc

    def close(self) -> None:
        self._client.close()


class _AmqpSender:
    def __init__(self, publisher: CeleryPublisher, app: Celery) -> None:
        self._publisher = publisher
        self._app = app

    def send(self, messages: list[Message]) -> None:
        done = 0
        try:
            with self._app.producer_or_acquire() as producer:
                for route, texts in messages:
                    self._publisher.send(route, texts, producer=producer)  # returns once confirmed
                    done += 1
        except Exception as exc:
            raise _Stopped(done, exc) from exc

    def close(self) -> None:
        pass
