"""The composition root: the one place that reads settings and builds the adapters.

`Runtime` holds one `Fleet` (the wired adapters) per process, built on first use: never at
import, and again in each prefork child, since connections must not cross a fork. `Fleet` holds
the core (publisher, dispatcher) and one container per concern (workers/wiring/).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import redis
from celery import Celery
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from engine.dispatch import Dispatcher
from engine.effects import Effects, check_wiring
from handlers.domains import Domain, enabled_domains, installed_domains
from handlers.orders.ports import OrderDeadlines
from handlers.ports import Clock, Publisher
from handlers.registry import Registry
from infra.arrivals import Arrivals
from infra.claim_deadline import claim_deadline
from infra.db import make_engine
from infra.dead_letters import SqlDeadLetters
from infra.delayed import RedisDelayed
from infra.failures import is_infrastructure_failure
from infra.history import SqlHistory
from infra.loop_publisher import RedisLoopPublisher, ThreadedPublisher
from infra.metrics.fleet import PrometheusRecorder
from infra.outbox import SqlOutbox
from infra.producer import Producer
from infra.publisher import CeleryPublisher
from infra.settings import Settings
from infra.slots import RedisSlots
from infra.throttle import RedisGate
from infra.tracing.messaging import tracer_for
from infra.tracing.setup import instrument_engine
from schedules.beat import beat_schedule
from workers.wiring.domains import Domains
from workers.wiring.ingress import IngressChecks
from workers.wiring.stores import Stores
from workers.wiring.transports import Transports

log = logging.getLogger("fleet")


@dataclass
class Fleet:
    """The adapters of one process, wired: the core here, the rest by concern (workers/wiring/)."""

    settings: Settings
    registry: Registry
    app: Celery
    engine: Engine
    redis: redis.Redis
    worker_scope: str = ""
    """The worker whose pool processes share downstream slots: its host and main pid."""
    enabled: Sequence[Domain] = ()
    """The domains that run here (FLEET_DOMAINS): their ports are wired into the dispatcher."""

    @cached_property
    def stores(self) -> Stores:
        return Stores(self.settings, self.engine, self.redis)

    @cached_property
    def domains(self) -> Domains:
        return Domains(self.settings, self.engine, self.redis, self.enabled)

    @cached_property
    def ingress(self) -> IngressChecks:
        return IngressChecks(self.settings, self.engine, self.redis)

    @cached_property
    def transports(self) -> Transports:
        return Transports(
            self.settings, self.registry, self.engine, self.redis, self.publisher, self.stores.dead_letters
        )

    # The parts Celery's tasks take (tasks/parts.py `TaskParts`).

    @property
    def clock(self) -> Clock:
        return self.domains.clock

    @property
    def outbox(self) -> SqlOutbox:
        return self.stores.outbox

    @property
    def history(self) -> SqlHistory:
        return self.stores.history

    @property
    def dead_letters(self) -> SqlDeadLetters:
        return self.stores.dead_letters

    @property
    def delayed(self) -> RedisDelayed:
        return self.stores.delayed

    @property
    def order_deadlines(self) -> OrderDeadlines:
        return self.domains.order_deadlines

    @cached_property
    def publisher(self) -> CeleryPublisher:
        return CeleryPublisher(
            self.app,
            self.registry,
            max_event_bytes=self.settings.max_event_bytes,
            batch_size=self.settings.batch_size,
            queue_prefix=self.settings.queue_prefix,
            declare_queues=not self.settings.broker_is_redis,
            arrivals=self.arrivals,
            stamp_due_time=not self.settings.broker_is_redis,
        )

    @cached_property
    def producer(self) -> Producer:
        """Producers' sends (the web ingress, `fleet publish`): each broker step bounded by
        FLEET_PUBLISH_TIMEOUT, concurrent sends grouped (infra/producer.py)."""
        return Producer(self.settings, self.registry, arrivals=self.arrivals)

    @cached_property
    def arrivals(self) -> Arrivals:
        return Arrivals(self.redis, self.settings.key_prefix)

    @cached_property
    def loop_publisher(self) -> RedisLoopPublisher | ThreadedPublisher:
        """The web process's: sends from its event loop on Redis, from threads of its own else."""
        if self.settings.broker_is_redis:
            return RedisLoopPublisher(
                self.producer.publisher, self.settings.broker_url, timeout=self.settings.publish_timeout
            )
        return ThreadedPublisher(self.producer)

    def publisher_for(self, target: str) -> Publisher:
        """The publisher of a target in `infra.transports.PUBLISH_TARGETS`."""
        if target == "redis-stream":
            return self.transports.redis_stream_producer
        if target == "servicebus":
            return self.transports.servicebus_publisher
        if target == "celery":
            return self.producer
        raise ValueError(f"no publisher for {target!r}")

    @cached_property
    def dispatcher(self) -> Dispatcher:
        services = self.domains.services()
        transaction_ports = self.domains.transaction_ports()
        insert_ports = self.domains.insert_ports()
        check_wiring(self.registry, services, transaction_ports, insert_ports)
        stores = self.stores
        tracer = tracer_for(self.publisher.system, self.registry, self.settings.queue_prefix)
        effects = Effects(
            registry=self.registry,
            transactions=stores.transactions,
            ledger=stores.ledger,
            outbox=stores.outbox,
            publisher=self.publisher,
            clock=self.clock,
            services=services,
            transaction_ports=transaction_ports,
            insert_ports=insert_ports,
            guarded=stores.guarded_writes,
            deadline=claim_deadline,
            tracer=tracer,
        )
        return Dispatcher(
            registry=self.registry,
            effects=effects,
            dead_letters=stores.dead_letters,
            attempts=stores.attempts,
            publisher=self.publisher,
            delayed=stores.delayed,
            clock=self.clock,
            is_infrastructure_failure=is_infrastructure_failure,
            eta_max=self.settings.eta_max,
            gate=RedisGate(self.redis, self.settings.key_prefix, self.settings.rate_limits, self.slots),
            recorder=PrometheusRecorder(),
            history=stores.history_writer,
            history_mode=self.settings.history,
            tracer=tracer,
        )

    @cached_property
    def slots(self) -> RedisSlots:
        scope = self.worker_scope or f"{socket.gethostname()}:{os.getpid()}"
        settings = self.settings
        return RedisSlots(
            self.redis, settings.key_prefix, scope, settings.downstream_slots, settings.worker_concurrency
        )

    def dispose_after_fork(self) -> None:
        """Leave the parent's database connections to the parent."""
        self.engine.dispose(close=False)
        if "stores" in self.__dict__:
            self.stores.dispose_after_fork()

    def close(self) -> None:
        if "producer" in self.__dict__:
            self.producer.close()
        if "domains" in self.__dict__:
            self.domains.close()
        if "ingress" in self.__dict__:
            self.ingress.close()
        if "transports" in self.__dict__:
            self.transports.close()
        self.engine.dispose()
        if "stores" in self.__dict__:
            self.stores.close()
        self.redis.close()


class Runtime:
    """Settings, routing table and Celery app for the process's life; the `Fleet` per process."""

    def __init__(self, settings: Settings, registry: Registry | None = None) -> None:
        from workers.celery_app import make_app

        self.settings = settings
        installed = installed_domains()
        self.domains = enabled_domains(settings.domains, installed)
        self.registry = registry or Registry.for_domains(self.domains).with_leases(settings.claim_leases)
        self.beat_schedule = beat_schedule(self.domains)
        # Every installed domain's, enabled or not: a domain switched off keeps its tables, and
        # the database's revision of its branch stays one the migrations know.
        self.migrations = [domain.migrations for domain in installed.values() if domain.migrations]
        """The installed domains' alembic version locations (infra/migrate.py)."""
        self._fleet: Fleet | None = None
        self._pid = os.getpid()
        # Made in the worker's main process: its pool processes, forked from it, share its slots.
        self.worker_scope = f"{socket.gethostname()}:{self._pid}"
        self.app = make_app(settings, self.registry, self.fleet, self.beat_schedule)

    def fleet(self) -> Fleet:
        if self._fleet is None or self._pid != os.getpid():
            self._after_fork()
            engine = make_engine(self.settings.database_url)
            instrument_engine(engine)  # its statements as spans, when this process exports them
            self._fleet = Fleet(
                settings=self.settings,
                registry=self.registry,
                app=self.app,
                engine=engine,
                redis=redis.Redis.from_url(self.settings.coordination_url),
                worker_scope=self.worker_scope,
                enabled=self.domains,
            )
        return self._fleet

    def _after_fork(self) -> None:
        if self._fleet is not None and self._pid != os.getpid():
            self._fleet.dispose_after_fork()
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
