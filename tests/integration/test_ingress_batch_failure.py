"""A `POST /events` batch whose broker goes away as it is handed over. The publisher sends a batch
as several messages (`FLEET_BATCH_SIZE` events each), all of a queue's in one LPUSH: a batch to
one queue reaches the broker whole or not at all. A batch to several queues is one LPUSH per
queue, so some queues can have their events when the others fail. Either way the client hears
503 and nothing accepted; its retry sends everything again, and the workers' ledger makes the
events that went twice take effect once."""

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


def cloudevent(event_id: str, event_type: str, source: str, data: object) -> dict[str, object]:
    return {"specversion": "1.0", "id": event_id, "source": source, "type": event_type, "data": data}


def deposit(event_id: str) -> dict[str, object]:
    data = {"account": "acc-1", "amount": 1}
    return cloudevent(event_id, "demo.deposit_recorded", "https://shop.example/orders", data)


def invalidation(event_id: str) -> dict[str, object]:
    return cloudevent(event_id, "cache.invalidate", "https://shop.example/catalogue", {"tags": ["product:1"]})


def test_a_batch_that_fails_halfway_is_refused_whole_and_its_retry_takes_effect_exactly_once(
    fleet_under_test: FleetUnderTest,
) -> None:
    proxy, through_proxy = TcpProxy.before(fleet_under_test.env["FLEET_BROKER_URL"])
    queue_name = fleet_under_test.runtime.settings.queue_name
    deposits_queue, cache_queue = queue_name("fleet.demo"), queue_name("fleet.cache")
    try:
        _, base = start_web(
            fleet_under_test, env={"FLEET_BROKER_URL": through_proxy, "FLEET_BATCH_SIZE": str(BATCH_SIZE)}
        )
        headers = {
            "Authorization": f"Bearer {api_key(fleet_under_test, 'demo.*', 'cache.*')}",
            "Content-Type": "application/cloudevents-batch+json",
        }
        one_queue = json.dumps([deposit(event_id) for event_id in IDS])
        two_queues = json.dumps([*(deposit(event_id) for event_id in IDS), invalidation("inv-1")])
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            proxy.stop_at_lpush(1)  # the broker is gone as the batch's one LPUSH arrives
            whole = client.post("/events", content=one_queue)
            assert whole.status_code == 503, whole.text
            assert queued_events(fleet_under_test.redis, deposits_queue) == []  # none of its three messages

            proxy.start()
            wait_until(lambda: client.get("/readyz").status_code == 200, timeout=30, what="ready again")
            proxy.stop_at_lpush(2)  # the deposits' LPUSH gets through, the broker is gone for the next
            failed = client.post("/events", content=two_queues)
            assert failed.status_code == 503, failed.text
            assert int(failed.headers["retry-after"]) > 0
            assert "nothing was accepted" in problem(failed)["detail"]
            assert "accepted" not in failed.json()
            # The halfway state, seen on the broker itself (no worker has run yet): the deposits
            # are there, the invalidation is not.
            assert [event["id"] for event in queued_events(fleet_under_test.redis, deposits_queue)] == IDS
            assert queued_events(fleet_under_test.redis, cache_queue) == []

            proxy.start()
            wait_until(lambda: client.get("/readyz").status_code == 200, timeout=30, what="ready again")
            retried = client.post("/events", content=two_queues)
            assert retried.status_code == 202, retried.text
            assert retried.json() == {"accepted": [*IDS, "inv-1"]}
            sentinel = client.post("/events", content=json.dumps([deposit("sentinel")]))
            assert sentinel.status_code == 202, sentinel.text
        on_broker = [event["id"] for event in queued_events(fleet_under_test.redis, deposits_queue)]
        assert on_broker == [*IDS, *IDS, "sentinel"]  # the deposits went twice
        assert [event["id"] for event in queued_events(fleet_under_test.redis, cache_queue)] == ["inv-1"]

        fleet_under_test.start_worker(concurrency=1)  # one process: messages are taken in order
        wait_until(lambda: "sentinel" in fleet_under_test.deposits(), timeout=60, what="the sentinel")
        assert fleet_under_test.deposits() == {event_id: 1 for event_id in [*IDS, "sentinel"]}
        with fleet_under_test.engine.connect() as connection:
            ledger_rows = connection.execute(select(func.count()).select_from(processed_events)).scalar()
        # One per deposit, the twice-sent ones included (the invalidation, idempotent by itself, has none).
        assert ledger_rows == len(IDS) + 1
        assert fleet_under_test.letters() == []
    finally:
        proxy.stop()
