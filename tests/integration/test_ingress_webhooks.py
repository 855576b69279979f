"""Standard Webhooks at a real `fleet web`: signatures checked with rotating secrets, replays of old
deliveries refused, good deliveries turned into events of the configured type."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from infra.ingress.standard_webhooks import sign
from tests.integration.conftest import FleetUnderTest
from tests.support.ingress import queued_events, start_web

pytestmark = pytest.mark.integration

NEW_SECRET = "whsec_" + base64.b64encode(b"new-secret-of-32-bytes-exactly!!").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"old-secret-of-32-bytes-exactly!!").decode()


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """Redis: the test reads the queue the webhook fills."""
    return redis_url


@pytest.fixture
def web(fleet_under_test: FleetUnderTest) -> Iterator[str]:
    sources = {"bank": {"type": "demo.deposit_recorded", "secrets": [NEW_SECRET, OLD_SECRET]}}
    _, base = start_web(fleet_under_test, env={"FLEET_WEBHOOK_SOURCES": json.dumps(sources)})
    yield base


def deliver(
    base: str, msg_id: str, body: bytes, *, secret: str = NEW_SECRET, age: int = 0, source: str = "bank"
) -> httpx.Response:
    timestamp = int(time.time()) - age
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "content-type": "application/json",
    }
    return httpx.post(f"{base}/webhooks/{source}", content=body, headers=headers, timeout=30)


def test_signed_deliveries_become_events_and_bad_or_replayed_ones_are_refused(
    fleet_under_test: FleetUnderTest, web: str
) -> None:
    body = json.dumps({"account": "acc-1", "amount": 7}).encode()
    assert deliver(web, "msg-new", body).status_code == 202
    assert deliver(web, "msg-old", body, secret=OLD_SECRET).status_code == 202  # rotation: old still good

    stranger = "whsec_" + base64.b64encode(b"x" * 32).decode()
    refusals = {
        "wrong secret": (deliver(web, "msg-x", body, secret=stranger), 401, "no webhook-signature matches"),
        "replayed": (deliver(web, "msg-new", body, age=600), 401, "from now"),
        "unknown source": (deliver(web, "msg-y", body, source="nobody"), 404, "no webhook source"),
        "signed garbage": (deliver(web, "msg-z", b"{not json"), 400, "malformed JSON"),
        "negative amount": (
            deliver(web, "msg-n", json.dumps({"account": "acc-1", "amount": -5}).encode()),
            422,
            "data.amount: Input should be greater than 0",
        ),
    }
    altered = httpx.post(
        f"{web}/webhooks/bank",
        content=body.replace(b"7", b"700"),
        headers={
            "webhook-id": "msg-new",
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": sign(NEW_SECRET, "msg-new", int(time.time()), body),
        },
        timeout=30,
    )
    refusals["altered body"] = (altered, 401, "no webhook-signature matches")
    for what, (response, status, says) in refusals.items():
        assert response.status_code == status, (what, response.text)
        assert says in response.json()["detail"], (what, response.text)

    events = queued_events(fleet_under_test.redis, fleet_under_test.runtime.settings.queue_name("fleet.demo"))
    assert [(e["id"], e["type"], e["source"], e["data"]) for e in events] == [
        ("msg-new", "demo.deposit_recorded", "webhooks/bank", {"account": "acc-1", "amount": 7}),
        ("msg-old", "demo.deposit_recorded", "webhooks/bank", {"account": "acc-1", "amount": 7}),
    ]
