"""The tickets domain, as the fleet finds it (entry point `fleet.domains` in pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

from fleet.domains import Domain, DomainContext, DomainPorts
from fleet_tickets.routes import ROUTES
from fleet_tickets.store import SqlAcknowledgements, SqlTicketBook


def ports(context: DomainContext) -> DomainPorts:
    """The tickets' ports, built once per worker process from the fleet's database."""
    return DomainPorts(
        services={"acknowledgements": SqlAcknowledgements(context.engine)},
        insert_ports={"tickets": SqlTicketBook},
    )


DOMAIN = Domain(
    name="tickets",
    routes=ROUTES,
    ports=ports,
    migrations=str(Path(__file__).with_name("migrations")),
)
