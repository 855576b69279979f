"""The composition root: the one place that reads settings and builds the adapters.

`Runtime` holds one `Fleet` (the wired adapters) per process, built on first use: never at
import, and again in each prefork child, since connections must not cross a fork.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cached_property

import redis
from celery import Celery
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from handlers.registry import Registry
from infra.attempts import RedisAttempts
from infra.db import make_engine
from infra.dead_letters import SqlDeadLetters
from infra.delayed import RedisDelayed
from infra.demo import RedisDownstreamSwitch, RedisReceiptSender, SqlDepositBook, SystemClock
from infra.ledger import SqlLedger
from infra.outbox import SqlOutbox
from infra.publisher import CeleryPublisher
from infra.settings import Settings
from infra.throttle import RedisGate
from tasks.dispatch import Dispatcher, check_wiring

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
    def ledger(self) -> SqlLedger:
        return SqlLedger(self.engine)

    @cached_property
    def outbox(self) -> SqlOutbox:
        return SqlOutbox(self.engine)

    @cached_property
    def dead_letters(self) -> SqlDeadLetters:
        return SqlDeadLetters(self.engine)

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
        )

    @cached_property
    def receipts(self) -> RedisReceiptSender:
        return RedisReceiptSender(self.redis, self.settings.key_prefix)

    @cached_property
    def downstream(self) -> RedisDownstreamSwitch:
        return RedisDownstreamSwitch(self.redis, self.settings.key_prefix)

    @cached_property
    def dispatcher(self) -> Dispatcher:
        services = {"clock": self.clock, "receipts": self.receipts, "downstream": self.downstream}
        transaction_ports = {"deposits": SqlDepositBook}
        check_wiring(self.registry, services, transaction_ports)
        return Dispatcher(
            registry=self.registry,
            engine=self.engine,
            ledger=self.ledger,
            outbox=self.outbox,
            dead_letters=self.dead_letters,
            attempts=self.attempts,
            publisher=self.publisher,
            delayed=self.delayed,
            clock=self.clock,
            services=services,
            transaction_ports=transaction_ports,
            eta_max=self.settings.eta_max,
            gate=RedisGate(self.redis, self.settings.key_prefix, self.settings.rate_limits),
        )

    def close(self) -> None:
        self.engine.dispose()
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
