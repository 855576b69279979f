"""A domain as a package: its routes, how its ports are built, its schedules and its migrations,
found through the `fleet.domains` entry point group.

A package declares one `Domain` and names it in its pyproject.toml:

    [project.entry-points."fleet.domains"]
    tickets = "fleet_tickets.domain:DOMAIN"

The fleet's own domains (demo, graph, orders, cache) are declared the same way. `FLEET_DOMAINS`
(a comma list) chooses which run; left empty, every installed domain does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from handlers.routing import Route

ENTRY_POINT_GROUP = "fleet.domains"


@dataclass(frozen=True)
class DomainPorts:
    """What a domain's handlers are given, by the keyword they name it with."""

    services: Mapping[str, object] = field(default_factory=dict)
    """Process-wide ports (clients, senders, policies)."""
    transaction_ports: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    """Ports bound to the handler's transaction: built from it, flushed before commit
    (`engine.ports.TransactionPort`)."""
    insert_ports: Mapping[str, Callable[[], Any]] = field(default_factory=dict)
    """Ports that only buffer rows for one table (`engine.ports.InsertPort`)."""
    close: Callable[[], None] | None = None
    """Releases what the ports hold (connections of an SDK client) when the process ends."""


@dataclass(frozen=True)
class Domain:
    """One domain: its event types and everything the fleet needs to run them."""

    name: str
    routes: tuple[Route, ...]
    ports: Callable[[Any], DomainPorts] | None = None
    """Builds the domain's ports from what the fleet gives every domain (its database engine,
    Redis, settings, clock: `infra.domain_context.DomainContext`), once per process."""
    schedules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Beat entries by job name, in the shape of `schedules.beat.BEAT_SCHEDULE`."""
    migrations: str | None = None
    """The directory of the domain's alembic revisions: a version location of its own, whose
    first revision carries the domain's name as branch label (`fleet db upgrade` applies it)."""


class UnknownDomain(ValueError):
    """FLEET_DOMAINS names a domain no installed package declares."""


def installed_domains() -> dict[str, Domain]:
    """Every domain an installed package declares, by name."""
    found: dict[str, Domain] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        domain = point.load()
        if not isinstance(domain, Domain):
            raise TypeError(f"entry point {point.name} = {point.value!r} is not a handlers.domains.Domain")
        if domain.name != point.name:
            raise ValueError(f"entry point {point.name!r} declares a domain named {domain.name!r}")
        found[domain.name] = domain
    return found


def enabled_domains(names: Sequence[str] = (), installed: Mapping[str, Domain] | None = None) -> list[Domain]:
    """The domains named (all installed ones when none is), in the order named."""
    installed = installed_domains() if installed is None else installed
    if not names:
        return [installed[name] for name in sorted(installed)]
    if unknown := [name for name in names if name not in installed]:
        raise UnknownDomain(
            f"FLEET_DOMAINS names {', '.join(map(repr, unknown))}, which no installed package declares "
            f"(installed: {', '.join(sorted(installed)) or 'none'}; entry point group {ENTRY_POINT_GROUP!r})"
        )
    return [installed[name] for name in dict.fromkeys(names)]


def route_table(domains: Iterable[Domain]) -> dict[str, Route]:
    """The routing table of some domains; an event type or task routed twice is an error."""
    table: dict[str, Route] = {}
    tasks: dict[str, str] = {}
    for domain in domains:
        for route in domain.routes:
            if route.type in table:
                raise ValueError(f"event type {route.type!r} is routed twice ({domain.name})")
            if route.task in tasks:
                raise ValueError(f"task {route.task!r} is named twice ({tasks[route.task]}, {domain.name})")
            table[route.type] = route
            tasks[route.task] = domain.name
    return table
