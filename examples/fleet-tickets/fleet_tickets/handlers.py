"""The tickets' handlers: plain functions of the event and the ports they name."""

from __future__ import annotations

from typing import Any, Protocol

from fleet.domains import Event, InvalidEvent, follow_up


class TicketBook(Protocol):
    """New tickets, written in the handler's transaction."""

    def add(self, *, ticket_id: str, title: str, customer: str) -> None: ...


class Acknowledgements(Protocol):
    def acknowledge(self, ticket_id: str) -> None: ...


def open_ticket(event: Event, *, tickets: TicketBook) -> list[Event]:
    """Open a ticket, then ask for it to be acknowledged.

    Transactional: the ticket row commits with the ledger row, so a redelivery is a no-op.
    """
    data: dict[str, Any] = event.data if isinstance(event.data, dict) else {}
    title, customer = data.get("title"), data.get("customer")
    if not isinstance(title, str) or not title.strip():
        raise InvalidEvent("data.title", "must be a non-empty string")
    if not isinstance(customer, str):
        raise InvalidEvent("data.customer", "must name the customer")
    tickets.add(ticket_id=event.id, title=title.strip(), customer=customer)
    return [follow_up(event, "tickets.acknowledgement_due", {"ticket": event.id}, id=f"{event.id}/ack")]


def acknowledge_ticket(event: Event, *, acknowledgements: Acknowledgements) -> None:
    """Mark a ticket acknowledged.

    Natural: setting a flag to true is idempotent by itself; running it twice changes nothing.
    """
    ticket = event.data.get("ticket") if isinstance(event.data, dict) else None
    if not isinstance(ticket, str):
        raise InvalidEvent("data.ticket", "must name the ticket")
    acknowledgements.acknowledge(ticket)
