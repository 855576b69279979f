"""The enabled domains' ports (handlers/domains.py `Domain.ports`), built once per process from
what the fleet gives every domain, and merged by the keyword handlers name them with."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from redis import Redis
from sqlalchemy import Connection, Engine

from engine.ports import InsertPort, TransactionPort
from handlers.domains import Domain, DomainPorts
from infra.demo import SystemClock
from infra.domain_context import DomainContext
from infra.graph.wiring import GraphAdapters
from infra.ingress.subscription_secrets import RedisSecretBroadcast
from infra.orders.store import SqlOrderDeadlines
from infra.settings import Settings


@dataclass
class Domains:
    settings: Settings
    engine: Engine
    redis: Redis
    enabled: Sequence[Domain]

    @cached_property
    def clock(self) -> SystemClock:
        return SystemClock()

    @cached_property
    def order_deadlines(self) -> SqlOrderDeadlines:
        """For the orders' time-out task (tasks/orders.py), which runs whichever domains are on."""
        return SqlOrderDeadlines(self.engine)

    @cached_property
    def graph(self) -> GraphAdapters:
        """The Graph operator's tools (`fleet graph`, the console's Graph page, the subscription
        metrics); the graph domain's handlers get their own from its ports."""
        broadcast = RedisSecretBroadcast(self.redis, self.settings.key_prefix)
        return GraphAdapters(self.settings, self.engine, secrets_changed=broadcast.changed)

    @cached_property
    def ports(self) -> dict[str, DomainPorts]:
        context = DomainContext(self.settings, self.engine, self.redis, self.clock)
        return {domain.name: domain.ports(context) for domain in self.enabled if domain.ports is not None}

    def services(self) -> dict[str, object]:
        """Process-wide ports, by the keyword a handler names them with."""
        return {"clock": self.clock, **self._merged(lambda ports: ports.services)}

    def port(self, name: str) -> Any:
        """One process-wide port by its keyword (`receipts`, `cache`): for tools and tests."""
        return self.services()[name]

    def insert_ports(self) -> dict[str, Callable[[], InsertPort]]:
        """Ports that only buffer rows to insert (their routes take the guarded statement)."""
        return self._merged(lambda ports: ports.insert_ports)

    def transaction_ports(self) -> dict[str, Callable[[Connection], TransactionPort]]:
        """Ports bound to the handler's transaction."""
        return self._merged(lambda ports: ports.transaction_ports)

    def _merged(self, part: Callable[[DomainPorts], Mapping[str, Any]]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        owner: dict[str, str] = {"clock": "the fleet"}
        for name, ports in self.ports.items():
            for keyword, port in part(ports).items():
                if keyword in owner:
                    raise ValueError(f"port {keyword!r} is provided by both {owner[keyword]} and {name}")
                owner[keyword] = name
                merged[keyword] = port
        return merged

    def close(self) -> None:
        if "graph" in self.__dict__:  # built: its SDK client may hold connections
            self.graph.close()
        if "ports" not in self.__dict__:
            return
        for ports in self.ports.values():
            if ports.close is not None:
                ports.close()
