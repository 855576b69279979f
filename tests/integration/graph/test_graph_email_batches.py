"""Bulk `email.send`: messages of hundreds of mails, each mail sent once, none cut short."""

from __future__ import annotations

import pytest

from handlers.envelope import new_event
from tests.integration.conftest import FleetUnderTest
from tests.support.graph_standin import GraphStandIn
from tests.support.processes import wait_until

SEND = r"/messages/[^/]+/send$"
MAILS, BATCH = 2000, 500
LEASE = 15.0
"""Short enough that a message of 500 mails outlasts it; long enough for a fresh pool process's
first mail (the Graph client's imports and token)."""


@pytest.mark.timeout(720)  # the wait below, and the worker's start and stop
def test_mails_published_in_batches_of_500_are_each_sent_once(
    fleet_under_test: FleetUnderTest, graph_env: dict[str, str], graph_standin: GraphStandIn
) -> None:
    fut = fleet_under_test
    fut.env.update(graph_env)
    worker = fut.start_worker(env={"FLEET_CLAIM_LEASES": f"email.send={LEASE}"})
    mails = [
        new_event(
            "email.send",
            {"to": ["ada@contoso.example"], "subject": f"Notice {n}", "text": "hello"},
            source="billing",
            id=f"notice-{n}",
        )
        for n in range(MAILS)
    ]
    for start in range(0, MAILS, BATCH):
        fut.fleet.publisher.publish(mails[start : start + BATCH])

    def sent() -> int:
        return graph_standin.count("POST", SEND)

    # About 0.1 s of CPU a mail in the Graph SDK: minutes on a busy machine.
    wait_until(lambda: sent() >= MAILS or fut.letters(), timeout=600, interval=1.0, what="every mail sent")
    assert fut.letters() == []
    subjects = [str(mail["subject"]) for mail in graph_standin.folder("mailbox-1", "sentitems")]
    assert sorted(subjects) == sorted(f"Notice {n}" for n in range(MAILS))
    assert sent() == MAILS
    assert "ran past its claim's budget" not in worker.log()
