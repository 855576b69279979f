"""The ports the domains' handlers ask for by keyword (handlers/*/ports.py), and the
transaction-bound ports their routes write through."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from redis import Redis
from sqlalchemy import Connection, Engine

from engine.ports import InsertPort, TransactionPort
from infra import keys
from infra.cache import TaggedCache
from infra.demo import RedisDownstreamSwitch, RedisReceiptSender, SqlDepositBook, SystemClock
from infra.graph.store import SqlChangeJournal, SqlDeltaLinks
from infra.graph.wiring import GraphAdapters
from infra.ingress.subscription_secrets import RedisSecretBroadcast
from infra.orders.store import SqlOrderBook, SqlOrderDeadlines
from infra.orders.wiring import OrderAdapters
from infra.settings import Settings


@dataclass
class Domains:
    settings: Settings
    engine: Engine
    redis: Redis

    @cached_property
    def clock(self) -> SystemClock:
        return SystemClock()

    @cached_property
    def receipts(self) -> RedisReceiptSender:
        return RedisReceiptSender(self.redis, self.settings.key_prefix)

    @cached_property
    def downstream(self) -> RedisDownstreamSwitch:
        return RedisDownstreamSwitch(self.redis, self.settings.key_prefix)

    @cached_property
    def cache(self) -> TaggedCache:
        return TaggedCache(self.redis, namespace=keys.cache_namespace(self.settings.key_prefix))

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

    def services(self) -> dict[str, object]:
        """Process-wide ports, by the keyword a handler names them with."""
        return {
            "clock": self.clock,
            "receipts": self.receipts,
            "downstream": self.downstream,
            "cache": self.cache,
            "payments": self.orders.payments,
            "order_policy": self.orders.policy,
            "graph": self.graph.reader,
            "mailer": self.graph.mailer,
            "email_sends": self.graph.send_records,
            "subscriptions": self.graph.subscriptions,
            "graph_setup": self.graph.setup,
        }

    @staticmethod
    def insert_ports() -> dict[str, Callable[[], InsertPort]]:
        """Ports that only buffer rows to insert (their routes take the guarded statement)."""
        return {"deposits": SqlDepositBook}

    @staticmethod
    def transaction_ports() -> dict[str, Callable[[Connection], TransactionPort]]:
        """Ports bound to the handler's transaction."""
        return {"delta_links": SqlDeltaLinks, "journal": SqlChangeJournal, "orders": SqlOrderBook}

    def close(self) -> None:
        if "graph" in self.__dict__:  # built: its SDK client may hold connections
            self.graph.close()
