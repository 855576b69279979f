"""The composition root: the one place that reads settings and builds the adapters.

`Runtime` holds one `Fleet` (the wired adapters) per process, built on first use: never at
import, and again in each prefork child, since connections must not cross a fork.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import redis
from celery import Celery
from redis import Redis
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url

from fleet.cache import TaggedCache
from handlers.registry import Registry
from infra.attempts import RedisAttempts
from infra.db import make_engine
from infra.dead_letters import SqlDeadLetters
from infra.delayed import RedisDelayed
from infra.demo import RedisDownstreamSwitch, RedisReceiptSender, SqlDepositBook, SystemClock
from infra.graph.store import SqlChangeJournal, SqlDeltaLinks
from infra.graph.wiring import GraphAdapters
from infra.guarded_writes import SqlGuardedWrites
from infra.heartbeats import RedisHeartbeats
from infra.history import BufferedHistory, SqlHistory
from infra.ingress.api_keys import SqlApiKeys
from infra.ingress.graph_crypto import (
    ContentDecryptor,
    GraphRichNotifications,
    TokenPolicy,
    ValidationTokens,
)
from infra.ingress.subscription_secrets import RedisSecretBroadcast, SqlSubscriptionSecrets
from infra.ledger import SqlLedger
from infra.loop_publisher import RedisLoopPublisher, ThreadedPublisher
from infra.metrics import PrometheusRecorder
from infra.orders.store import SqlOrderBook, SqlOrderDeadlines
from infra.orders.wiring import OrderAdapters
from infra.outbox import SqlOutbox
from infra.publisher import CeleryPublisher
from infra.settings import Settings
from infra.throttle import RedisGate
from infra.transports import EventPublisher
from infra.transports.effects import SqlEffects
from infra.transports.redis_stream import RedisStreamGroup, RedisStreamProducer
from tasks.dispatch import Dispatcher
from tasks.effects import Effects, check_wiring
from tasks.ports import InsertPort, TransactionPort
from workers.bridges.handover import HandOver
from workers.bridges.redis_stream import RedisStreamBridge

if TYPE_CHECKING:  # the Service Bus SDK loads only in the processes that use it (about 0.5 s)
    from azure.servicebus import ServiceBusClient

    from infra.transports.servicebus import ServiceBusDeadLetters, ServiceBusPublisher
    from workers.bridges.servicebus import ServiceBusBridge

log = logging.getLogger("fleet")


@dataclass
class Fleet:
    """The adapters of one process, wired."""

    settings: Settings
    registry: Registry
    app: Celery
    engine: Engine
    redis: redis.Redis

    @cached_property
    def clock(self) -> SystemClock:
        return SystemClock()

    @cached_property
    def autocommit_engine(self) -> Engine:
        """Connections in autocommit, for single statements that are transactions by themselves
        (infra/guarded_writes.py): no BEGIN, no COMMIT, nothing to reset on return."""
        return make_engine(
            self.settings.database_url,
            isolation_level="AUTOCOMMIT",
            pool_reset_on_return=None,
            pool_size=2,
            max_overflow=2,
        )

    @cached_property
    def ledger(self) -> SqlLedger:
        return SqlLedger(self.engine)

    @cached_property
    def outbox(self) -> SqlOutbox:
        return SqlOutbox(self.engine)

    @cached_property
    def dead_letters(self) -> SqlDeadLetters:
        return SqlDeadLetters(self.engine)

    @cached_property
    def history(self) -> SqlHistory:
        return SqlHistory(self.engine)

    @cached_property
    def broker_redis(self) -> Redis:
        """The Redis broker, read directly (queue peeks); the coordination client when they agree."""
        if self.settings.broker_url == self.settings.coordination_url:
            return self.redis
        return Redis.from_url(self.settings.broker_url)

    @cached_property
    def history_writer(self) -> BufferedHistory:
        return BufferedHistory(self.history)

    @cached_property
    def heartbeats(self) -> RedisHeartbeats:
        return RedisHeartbeats(self.redis, self.settings.key_prefix)

    @cached_property
    def attempts(self) -> RedisAttempts:
        return RedisAttempts(self.redis, self.settings.key_prefix)

    @cached_property
    def delayed(self) -> RedisDelayed:
        return RedisDelayed(self.redis, self.settings.key_prefix)

    @cached_property
    def publisher(self) -> CeleryPublisher:
        return CeleryPublisher(
            self.app,
            self.registry,
            max_event_bytes=self.settings.max_event_bytes,
            batch_size=self.settings.batch_size,
            queue_prefix=self.settings.queue_prefix,
            declare_queues=not self.settings.broker_is_redis,
        )

    @cached_property
    def loop_publisher(self) -> RedisLoopPublisher | ThreadedPublisher:
        """The web process's: sends from its event loop on Redis, from threads of its own else."""
        if self.settings.broker_is_redis:
            return RedisLoopPublisher(self.publisher, self.settings.broker_url)
        return ThreadedPublisher(self.publisher)

    def publisher_for(self, target: str) -> EventPublisher:
        """The publisher of a target in `infra.transports.PUBLISH_TARGETS`."""
        if target == "redis-stream":
            return self.redis_stream_producer
        if target == "servicebus":
            return self.servicebus_publisher
        if target == "celery":
            return self.publisher
        raise ValueError(f"no publisher for {target!r}")

    @cached_property
    def stream_redis(self) -> Redis:
        url = self.settings.redis_stream_url
        return redis.Redis.from_url(url) if url else self.redis

    @cached_property
    def redis_stream_producer(self) -> RedisStreamProducer:
        return RedisStreamProducer(
            self.stream_redis,
            self.settings.redis_stream,
            registry=self.registry,
            max_event_bytes=self.settings.max_event_bytes,
            maxlen=self.settings.redis_stream_maxlen,
        )

    def redis_stream_bridge(self, consumer: str) -> RedisStreamBridge:
        """A bridge process's loop, as consumer `consumer` of the stream's group."""
        group = RedisStreamGroup(
            self.stream_redis,
            self.settings.redis_stream,
            self.settings.redis_stream_group,
            consumer,
            claim_idle_ms=int(self.settings.redis_stream_claim_idle * 1000),
            count=self.settings.batch_size,
        )
        return RedisStreamBridge(group, self.hand_over, self.dead_letters)

    def open_servicebus(self) -> Callable[[], ServiceBusClient]:
        from infra.transports.servicebus import client_factory

        secret = self.settings.servicebus_connection_string
        connection_string = secret.get_secret_value() if secret else None
        return client_factory(connection_string, self.settings.servicebus_namespace)

    @cached_property
    def servicebus_publisher(self) -> ServiceBusPublisher:
        from infra.transports.servicebus import ServiceBusPublisher

        return ServiceBusPublisher(
            self.open_servicebus(),
            self.settings.servicebus_queue,
            registry=self.registry,
            max_event_bytes=self.settings.max_event_bytes,
        )

    @cached_property
    def servicebus_dead_letters(self) -> ServiceBusDeadLetters:
        from infra.transports.servicebus import ServiceBusDeadLetters

        return ServiceBusDeadLetters(self.open_servicebus(), self.settings.servicebus_queue)

    def servicebus_bridge(self) -> ServiceBusBridge:
        from workers.bridges.servicebus import ServiceBusBridge

        return ServiceBusBridge(
            self.open_servicebus(),
            self.settings.servicebus_queue,
            self.hand_over,
            sessions=self.settings.servicebus_sessions,
            effects=SqlEffects(self.engine),
            batch=self.settings.batch_size,
            lock_renewal=self.settings.servicebus_lock_renewal,
        )

    @cached_property
    def hand_over(self) -> HandOver:
        return HandOver(
            self.registry,
            self.publisher,
            max_event_bytes=self.settings.max_event_bytes,
            batch_size=self.settings.batch_size,
        )

    @cached_property
    def api_keys(self) -> SqlApiKeys:
        return SqlApiKeys(self.engine, cache_seconds=self.settings.api_key_cache_seconds)

    @cached_property
    def subscription_secrets(self) -> SqlSubscriptionSecrets:
        return SqlSubscriptionSecrets(self.engine, self.redis, self.settings.key_prefix)

    @cached_property
    def graph_rich_notifications(self) -> GraphRichNotifications | None:
        """Token checks and decryption of rich notifications; None unless configured for them."""
        s = self.settings
        key_path = s.graph_private_key_path or s.graph_certificate_path
        if not (key_path and s.graph_certificate_id and s.graph_client_id and s.graph_tenant_id):
            return None
        with open(key_path, "rb") as key_file:
            decryptor = ContentDecryptor(key_file.read(), s.graph_certificate_id)
        policy = TokenPolicy(s.graph_jwks_url, s.graph_client_id, s.graph_tenant_id, s.graph_token_issuers)
        return GraphRichNotifications(ValidationTokens(policy), decryptor)

    @cached_property
    def receipts(self) -> RedisReceiptSender:
        return RedisReceiptSender(self.redis, self.settings.key_prefix)

    @cached_property
    def downstream(self) -> RedisDownstreamSwitch:
        return RedisDownstreamSwitch(self.redis, self.settings.key_prefix)

    @cached_property
    def cache(self) -> TaggedCache:
        return TaggedCache(self.redis, namespace=f"{self.settings.key_prefix}:cache")

    @cached_property
    def orders(self) -> OrderAdapters:
        return OrderAdapters(self.settings, self.engine)

    @cached_property
    def order_deadlines(self) -> SqlOrderDeadlines:
        return self.orders.deadlines

    @cached_property
    def graph(self) -> GraphAdapters:
        broadcast = RedisSecretBroadcast(self.redis, self.settings.key_prefix)
        return GraphAdapters(self.settings, self.engine, secrets_changed=broadcast.changed)

    @cached_property
    def dispatcher(self) -> Dispatcher:
        services = {"clock": self.clock, "receipts": self.receipts, "downstream": self.downstream}
        services["cache"] = self.cache
        services |= {"payments": self.orders.payments, "order_policy": self.orders.policy}
        services |= {
            "graph": self.graph.reader,
            "mailer": self.graph.mailer,
            "email_sends": self.graph.send_records,
            "subscriptions": self.graph.subscriptions,
        }
        insert_ports: dict[str, Callable[[], InsertPort]] = {"deposits": SqlDepositBook}
        transaction_ports: dict[str, Callable[[Connection], TransactionPort]] = {
            "delta_links": SqlDeltaLinks,
            "journal": SqlChangeJournal,
            "orders": SqlOrderBook,
        }
        check_wiring(self.registry, services, transaction_ports, insert_ports)
        effects = Effects(
            registry=self.registry,
            engine=self.engine,
            ledger=self.ledger,
            outbox=self.outbox,
            publisher=self.publisher,
            clock=self.clock,
            services=services,
            transaction_ports=transaction_ports,
            insert_ports=insert_ports,
            guarded=SqlGuardedWrites(self.autocommit_engine),
        )
        return Dispatcher(
            registry=self.registry,
            effects=effects,
            dead_letters=self.dead_letters,
            attempts=self.attempts,
            publisher=self.publisher,
            delayed=self.delayed,
            clock=self.clock,
            eta_max=self.settings.eta_max,
            gate=RedisGate(self.redis, self.settings.key_prefix, self.settings.rate_limits),
            recorder=PrometheusRecorder(),
            history=self.history_writer,
            history_mode=self.settings.history,
        )

    def close(self) -> None:
        if "graph" in self.__dict__:  # built: its SDK client may hold connections
            self.graph.close()
        if "subscription_secrets" in self.__dict__:  # its listener thread
            self.subscription_secrets.close()
        self.engine.dispose()
        if "autocommit_engine" in self.__dict__:
            self.autocommit_engine.dispose()
        self.redis.close()


class Runtime:
    """Settings, routing table and Celery app for the process's life; the `Fleet` per process."""

    def __init__(self, settings: Settings, registry: Registry | None = None) -> None:
        from workers.celery_app import make_app

        self.settings = settings
        self.registry = registry or Registry()
        self._fleet: Fleet | None = None
        self._pid = os.getpid()
        self.app = make_app(settings, self.registry, self.fleet)

    def fleet(self) -> Fleet:
        if self._fleet is None or self._pid != os.getpid():
            self._after_fork()
            self._fleet = Fleet(
                settings=self.settings,
                registry=self.registry,
                app=self.app,
                engine=make_engine(self.settings.database_url),
                redis=redis.Redis.from_url(self.settings.coordination_url),
            )
        return self._fleet

    def _after_fork(self) -> None:
        if self._fleet is not None and self._pid != os.getpid():
            self._fleet.engine.dispose(close=False)  # leave the parent's connections to the parent
            if "autocommit_engine" in self._fleet.__dict__:
                self._fleet.autocommit_engine.dispose(close=False)
            self._fleet = None
        self._pid = os.getpid()

    def describe(self) -> dict[str, str]:
        return {
            "broker": _safe(self.settings.broker_url),
            "database": _safe(self.settings.database_url),
            "redis": _safe(self.settings.coordination_url),
        }


def _safe(url: str) -> str:
    """A URL with its password hidden, for logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.rsplit("@", maxsplit=1)[-1]
