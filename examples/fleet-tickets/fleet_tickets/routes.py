"""The tickets' rows of the fleet's routing table."""

from __future__ import annotations

from fleet.domains import Idempotency, RetryPolicy, Route
from fleet_tickets import handlers

ROUTES: tuple[Route, ...] = (
    Route(
        type="tickets.ticket_opened",
        handler=handlers.open_ticket,
        task="tickets.open",
        queue="tickets",
        idempotency=Idempotency.TRANSACTIONAL,
        retry=RetryPolicy(max_attempts=3, base_delay=0.2, max_delay=2.0),
    ),
    Route(
        type="tickets.acknowledgement_due",
        handler=handlers.acknowledge_ticket,
        task="tickets.acknowledge",
        queue="tickets",
        idempotency=Idempotency.NATURAL,
    ),
)
