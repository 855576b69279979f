"""A `POST /events` batch whose broker goes away halfway through the hand-over: the publisher sends
a batch as several messages (`FLEET_BATCH_SIZE` events each), so some can be on the broker when
the rest fail. The client hears 503 and nothing accepted; its retry sends everything again, and
the workers' ledger makes the events that went twice take effect once."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import func, select

from infra.schema import processed_events
from tests.integration.conftest import FleetUnderTest
from tests.integration.test_ingress_events import api_key, problem
from tests.support.ingress import TcpProxy, queued_events, start_web
from tests.support.processes import wait_until

pytestmark = pytest.mark.integration

BATCH_SIZE = 4  # events to a broker message, so that the batch below is three messages
IDS = [f"half-{n}" for n in range(3 * BATCH_SIZE)]


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """Redis: the proxy finds the message boundaries by the LPUSH commands."""
    return redis_url


def deposit(event_id: str) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "https://shop.example/orders",
        "type": "demo.deposit_recorded",
        "data": {"account": "acc-1", "amount": 1},
    }


def test_a_batch_that_fails_halfway_is_refused_whole_and_its_retry_takes_effect_exactly_once(
    fleet_under_test: FleetUnderTest,
) -> None:
    proxy, through_proxy = TcpProxy.before(fleet_under_test.env["FLEET_BROKER_URL"])
    queue = fleet_under_test.env["FLEET_QUEUE_PREFIX"] + "fleet.demo"
    try:
        _, base = start_web(
            fleet_under_test, env={"FLEET_BROKER_URL": through_proxy, "FLEET_BATCH_SIZE": str(BATCH_SIZE)}
        )
        headers = {
            "Authorization": f"Bearer {api_key(fleet_under_test, 'demo.*')}",
            "Content-Type": "application/cloudevents-batch+json",
        }
        batch = json.dumps([deposit(event_id) for event_id in IDS])
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            proxy.stop_at_lpush(2)  # the first message gets through, the broker is gone for the second
            failed = client.post("/events", content=batch)
            assert failed.status_code == 503, failed.text
            assert int(failed.headers["retry-after"]) > 0
            assert "nothing was accepted" in problem(failed)["detail"]
            assert "accepted" not in failed.json()
            # The halfway state, seen on the broker itself (no worker has run yet): the first
            # message's events are there, the others are not.
            assert [event["id"] for event in queued_events(fleet_under_test.redis, queue)] == IDS[:BATCH_SIZE]

            proxy.start()
            wait_until(lambda: client.get("/readyz").status_code == 200, timeout=30, what="ready again")
            retried = client.post("/events", content=batch)
            assert retried.status_code == 202, retried.text
            assert retried.json() == {"accepted": IDS}
            sentinel = client.post("/events", content=json.dumps([deposit("sentinel")]))
            assert sentinel.status_code == 202, sentinel.text
        on_broker = [event["id"] for event in queued_events(fleet_under_test.redis, queue)]
        assert on_broker == [*IDS[:BATCH_SIZE], *IDS, "sentinel"]  # the first four go twice

        fleet_under_test.start_worker(concurrency=1)  # one process: messages are taken in order
        wait_until(lambda: "sentinel" in fleet_under_test.deposits(), timeout=60, what="the sentinel")
        assert fleet_under_test.deposits() == {event_id: 1 for event_id in [*IDS, "sentinel"]}
        with fleet_under_test.engine.connect() as connection:
            ledger_rows = connection.execute(select(func.count()).select_from(processed_events)).scalar()
        assert ledger_rows == len(IDS) + 1  # one per event and handler, the twice-sent ones included
        assert fleet_under_test.letters() == []
    finally:
        proxy.stop()
