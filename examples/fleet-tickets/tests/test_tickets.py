"""The tickets' events through the fleet's real engine, on the in-memory twin: no services."""

from __future__ import annotations

from fleet_tickets.domain import DOMAIN
from fleet_tickets.store import SqlTicketBook

from fleet import new_event
from fleet.testing import FleetTwin


class Acknowledgements:
    def __init__(self) -> None:
        self.tickets: list[str] = []

    def acknowledge(self, ticket_id: str) -> None:
        self.tickets.append(ticket_id)


def test_a_ticket_sent_twice_opens_once_and_is_acknowledged() -> None:
    acks = Acknowledgements()
    twin = FleetTwin(
        domains=[DOMAIN], services={"acknowledgements": acks}, insert_ports={"tickets": SqlTicketBook}
    )
    opened = new_event(
        "tickets.ticket_opened", {"title": "Printer on fire", "customer": "c-1"}, source="desk", id="t-1"
    )
    twin.publish(opened, opened)
    twin.run_until_idle()
    assert [row["id"] for row in twin.rows("tickets")] == ["t-1"]
    assert acks.tickets == ["t-1"]


def test_a_ticket_without_a_title_goes_to_the_dead_letter_queue() -> None:
    twin = FleetTwin(
        domains=[DOMAIN],
        services={"acknowledgements": Acknowledgements()},
        insert_ports={"tickets": SqlTicketBook},
    )
    twin.publish(new_event("tickets.ticket_opened", {"customer": "c-1"}, source="desk", id="t-2"))
    twin.run_until_idle()
    [letter] = twin.dead_letters()
    assert (letter.event_id, letter.error_type) == ("t-2", "InvalidEvent")
    assert twin.rows("tickets") == []
