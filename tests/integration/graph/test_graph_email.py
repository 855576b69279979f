"""`email.send` through Graph: exactly one mail, whatever the network and the broker do."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from handlers.envelope import Event, new_event
from infra.graph.schema import graph_email_sends
from tests.integration.graph.conftest import MAILBOX, GraphFleet
from tests.support.processes import wait_until

pytestmark = pytest.mark.integration

SEND = r"/messages/[^/]+/send$"


def email(event_id: str) -> Event:
    data = {
        "to": ["ada@contoso.example"],
        "cc": ["ops@contoso.example"],
        "subject": f"Invoice {event_id}",
        "html": "<p>Your invoice is attached.</p>",
        "attachments": [
            {
                "name": "invoice.txt",
                "contentType": "text/plain",
                "contentBytes": base64.b64encode(b"42").decode(),
            }
        ],
    }
    return new_event("email.send", data, source="billing", id=event_id)


def sent_items(graph_fleet: GraphFleet) -> list[dict[str, object]]:
    return graph_fleet.graph.folder(MAILBOX, "sentitems")


def recorded_sends(graph_fleet: GraphFleet) -> list[bool]:
    with graph_fleet.engine.connect() as connection:
        return [row.sent for row in connection.execute(select(graph_email_sends))]


@pytest.mark.parametrize("failure", ["connection dropped", "504"])
def test_an_ambiguous_send_failure_is_retried_and_one_mail_is_sent(
    graph_fleet: GraphFleet, failure: str
) -> None:
    # Graph sends the draft, then the answer is lost: the worker cannot tell it was sent.
    graph_fleet.graph.inject("POST", SEND, status=0 if failure == "connection dropped" else 504, after=True)
    graph_fleet.publish(email("invoice-1"))
    wait_until(lambda: recorded_sends(graph_fleet) == [True], 60, 0.2, "the send recorded")
    [mail] = sent_items(graph_fleet)
    assert mail["subject"] == "Invoice invoice-1"
    assert mail["attachmentNames"] == ["invoice.txt"]
    assert graph_fleet.graph.count("POST", SEND) == 1  # the retry looked, found it sent, did not send again
    assert graph_fleet.graph.folder(MAILBOX, "drafts") == []
    assert graph_fleet.fleet.letters() == []


def test_the_same_email_command_delivered_twice_sends_one_mail_and_a_bad_one_none(
    graph_fleet: GraphFleet,
) -> None:
    graph_fleet.publish(email("invoice-2"))
    wait_until(lambda: recorded_sends(graph_fleet) == [True], 60, 0.2, "the first send")
    graph_fleet.publish(email("invoice-2"))  # a redelivery, long after the first completed
    graph_fleet.publish(
        new_event("email.send", {"to": [], "subject": "x", "text": "y"}, source="billing", id="bad")
    )
    graph_fleet.publish(email("invoice-3"))  # and a different email behind them, to know the queue moved
    wait_until(lambda: recorded_sends(graph_fleet) == [True, True], 60, 0.2, "the second email")
    subjects = sorted(str(m["subject"]) for m in sent_items(graph_fleet))
    assert subjects == ["Invoice invoice-2", "Invoice invoice-3"]
    [letter] = wait_until(graph_fleet.fleet.letters, 60, 0.2, "the bad command dead-lettered")
    assert letter.error_type == "InvalidEvent" and "data.to" in letter.error_message
