"""A real `fleet web` counts its requests by the API key that authenticated them and by outcome;
a key a caller merely presents, valid or not, never becomes a label.

Counting requests is the web process's, whatever the broker: Redis only.
"""

from __future__ import annotations

import httpx
import pytest

from handlers.envelope import new_event
from tests.integration.conftest import FleetUnderTest
from tests.integration.test_ingress_events import api_key
from tests.support.ingress import start_web
from tests.support.worker_metrics import parse_samples, series

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("broker_url", ["redis"], indirect=True)]
STRUCTURED = {"Content-Type": "application/cloudevents+json"}


def _deposit(event_id: str) -> bytes:
    return new_event(
        "demo.deposit_recorded", {"account": "a", "amount": 1}, source="t", id=event_id
    ).to_json()


def test_requests_are_counted_by_the_key_that_authenticated_them_and_their_outcome(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    _, base = start_web(fut)
    depositor = api_key(fut, "demo.*")
    outsider = api_key(fut, "orders.*")
    depositor_id, outsider_id = depositor.split("_")[1], outsider.split("_")[1]
    forged = f"fk_{'f' * 16}_not-a-secret"
    with httpx.Client(base_url=base, timeout=30) as client:
        for n, token in enumerate([depositor, depositor, outsider, forged, ""]):
            headers = {**STRUCTURED, **({"Authorization": f"Bearer {token}"} if token else {})}
            client.post("/events", content=_deposit(f"by-key-{n}"), headers=headers)
        page = client.get("/metrics").text

    samples = parse_samples(page)
    name = "fleet_ingress_requests_total"
    assert series(
        samples, name, endpoint="events", key_id=depositor_id, outcome="accepted", status="202"
    ) == [2.0]
    assert series(
        samples, name, endpoint="events", key_id=outsider_id, outcome="forbidden", status="403"
    ) == [1.0]
    assert series(samples, name, endpoint="events", key_id="", outcome="unauthenticated") == [2.0]
    key_ids = {dict(labels).get("key_id", "") for (found, labels) in samples if found == name}
    assert key_ids == {"", depositor_id, outsider_id}
    for secret in (depositor, outsider, forged, "f" * 16):
        assert secret not in page
