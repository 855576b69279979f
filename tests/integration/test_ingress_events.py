"""`POST /events` end to end, on both brokers: a CloudEvents SDK we did not write posts in all three
modes to a real `fleet web` and real workers handle the events; with the broker gone, requests get
503 and nothing is half-accepted; with it back, they flow."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from cloudevents.core.bindings.http import to_binary_event, to_structured_event
from cloudevents.core.v1.event import CloudEvent

from tests.integration.conftest import FleetUnderTest
from tests.support.ingress import TcpProxy, start_web
from tests.support.processes import wait_until

pytestmark = pytest.mark.integration


def api_key(fleet: FleetUnderTest, *types: str) -> str:
    args = [arg for event_type in types for arg in ("--type", event_type)]
    created = fleet.cli("keys", "create", "tests", *args)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


def deposit(event_id: str) -> CloudEvent:
    return CloudEvent(
        {"id": event_id, "source": "https://shop.example/orders", "type": "demo.deposit_recorded"},
        {"account": "acc-1", "amount": 1},
    )


def test_a_cloudevents_sdk_posts_structured_binary_and_batch_events_and_all_are_handled(
    fleet_under_test: FleetUnderTest,
) -> None:
    fleet_under_test.start_worker()
    _, base = start_web(fleet_under_test)
    auth = {"Authorization": f"Bearer {api_key(fleet_under_test, 'demo.*')}"}
    accepted: list[str] = []
    with httpx.Client(base_url=base, headers=auth, timeout=30) as client:
        for mode, message in (
            ("structured", to_structured_event(deposit("sdk-structured"))),
            ("binary", to_binary_event(deposit("sdk-binary"))),
        ):
            response = client.post("/events", content=message.body, headers=message.headers)
            assert response.status_code == 202, (mode, response.text)
            accepted += response.json()["accepted"]
        # The SDK has no batch writer: the batch is the JSON array of its structured bodies.
        batch = [json.loads(to_structured_event(deposit(f"sdk-batch-{n}")).body) for n in range(5)]
        response = client.post(
            "/events",
            content=json.dumps(batch),
            headers={"Content-Type": "application/cloudevents-batch+json"},
        )
        assert response.status_code == 202, response.text
        accepted += response.json()["accepted"]
        # The same structured event again is accepted and, downstream, a no-op.
        again = to_structured_event(deposit("sdk-structured"))
        assert client.post("/events", content=again.body, headers=again.headers).status_code == 202

    expected = {"sdk-structured", "sdk-binary", *(f"sdk-batch-{n}" for n in range(5))}
    assert set(accepted) == expected
    wait_until(lambda: set(fleet_under_test.deposits()) == expected, timeout=60, what="all deposits")
    assert all(count == 1 for count in fleet_under_test.deposits().values())


def problem(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


def test_with_the_broker_gone_requests_get_503_and_with_it_back_they_flow(
    fleet_under_test: FleetUnderTest,
) -> None:
    proxy, through_proxy = TcpProxy.before(fleet_under_test.env["FLEET_BROKER_URL"])
    try:
        fleet_under_test.start_worker()  # straight to the broker; only the web process uses the proxy
        _, base = start_web(fleet_under_test, env={"FLEET_BROKER_URL": through_proxy})
        token = api_key(fleet_under_test, "demo.*")
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:

            def post(*ids: str) -> httpx.Response:
                batch = [json.loads(to_structured_event(deposit(i)).body) for i in ids]
                return client.post(
                    "/events",
                    content=json.dumps(batch),
                    headers={"Content-Type": "application/cloudevents-batch+json"},
                )

            assert post("before-1", "before-2").status_code == 202
            proxy.stop()
            down = post("down-1", "down-2")
            assert down.status_code == 503, down.text
            assert int(down.headers["retry-after"]) > 0
            assert "nothing was accepted" in problem(down)["detail"]
            assert client.get("/readyz").status_code == 503
            proxy.start()
            wait_until(lambda: client.get("/readyz").status_code == 200, timeout=30, what="ready again")
            assert post("after-1", "down-2").status_code == 202
        accepted = {"before-1", "before-2", "after-1", "down-2"}
        wait_until(lambda: set(fleet_under_test.deposits()) == accepted, timeout=60, what="accepted deposits")
        assert "down-1" not in fleet_under_test.deposits()
    finally:
        proxy.stop()
