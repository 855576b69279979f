"""Microsoft Graph notifications at a real `fleet web`: the handshake, clientState checks, lifecycle
events, rich notifications (decrypted, tampered, forged tokens) and redeliveries, as seen on the
broker queue the Graph handlers consume."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import Engine

from infra.graph.schema import graph_subscriptions
from infra.graph.store import journal_entries
from tests.integration.conftest import FleetUnderTest
from tests.support import graph_notifications as graph
from tests.support.ingress import queued_events, start_web
from tests.support.processes import wait_until

pytestmark = pytest.mark.integration

SUBSCRIPTIONS = {"sub-a": "state-a-0123456789", "sub-b": "state-b-9876543210"}


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """Redis: the test reads the queue the webhook fills (the broker is the publisher's business)."""
    return redis_url


@pytest.fixture
def issuer(tmp_path: Path) -> graph.TokenIssuer:
    return graph.TokenIssuer(tmp_path, tenant="tenant-1", app_id="app-1")


def start_webhook(fleet: FleetUnderTest, engine: Engine, tmp_path: Path, jwks_url: str) -> tuple[str, bytes]:
    """`fleet web` taking rich notifications for SUBSCRIPTIONS, keys at `jwks_url`; (base URL, cert)."""
    now = datetime.now(UTC)
    with engine.begin() as connection:
        for subscription_id, state in SUBSCRIPTIONS.items():
            connection.execute(
                graph_subscriptions.insert().values(
                    id=subscription_id, resource="users", change_type="updated",
                    notification_url="https://fleet.example/graph/notifications", client_state=state,
                    include_resource_data=True, expires_at=now + timedelta(days=2), status="active",
                    created_at=now, updated_at=now,
                )
            )  # fmt: skip
    pem_path, cert_pem = graph.certificate(tmp_path)
    _, base = start_web(
        fleet,
        env={
            "FLEET_GRAPH_CERTIFICATE_PATH": str(pem_path),
            "FLEET_GRAPH_CERTIFICATE_ID": "cert-1",
            "FLEET_GRAPH_CLIENT_ID": "app-1",
            "FLEET_GRAPH_TENANT_ID": "tenant-1",
            "FLEET_GRAPH_JWKS_URL": jwks_url,
        },
    )
    return base, cert_pem


@pytest.fixture
def webhook(
    fleet_under_test: FleetUnderTest, engine: Engine, tmp_path: Path, issuer: graph.TokenIssuer
) -> Iterator[tuple[str, bytes]]:
    with issuer.serving_keys() as jwks_url:
        yield start_webhook(fleet_under_test, engine, tmp_path, jwks_url)


def graph_queue(fleet: FleetUnderTest) -> list[dict[str, Any]]:
    return queued_events(fleet.redis, fleet.runtime.settings.queue_name("fleet.graph"))


def one_good_change_each() -> list[dict[str, Any]]:
    """A change of sub-a (resource u-1) and one of sub-b (u-2), each with its own secret."""
    return [
        graph.change("sub-a", SUBSCRIPTIONS["sub-a"], "u-1"),
        graph.change("sub-b", SUBSCRIPTIONS["sub-b"], "u-2"),
    ]


def post(base: str, path: str, items: list[dict[str, Any]], **extra: Any) -> httpx.Response:
    return httpx.post(f"{base}{path}", json={"value": items, **extra}, timeout=30)


def test_the_validation_handshake_echoes_the_decoded_token_as_plain_text_only(
    webhook: tuple[str, bytes],
) -> None:
    base, _ = webhook
    token = "Validation: Testing client application reachability <script>alert(1)</script>"
    for path in ("/graph/notifications", "/graph/lifecycle"):
        response = httpx.post(f"{base}{path}?validationToken={quote(token)}", timeout=10)
        assert response.status_code == 200
        assert response.text == token
        assert response.headers["content-type"].startswith("text/plain")
        assert response.headers["x-content-type-options"] == "nosniff"
    too_long = httpx.post(f"{base}/graph/notifications?validationToken={'x' * 5000}", timeout=10)
    assert too_long.status_code == 400 and "x" * 5000 not in too_long.text


def test_a_batch_of_several_subscriptions_enqueues_the_good_items_and_refuses_the_rest(
    fleet_under_test: FleetUnderTest, webhook: tuple[str, bytes]
) -> None:
    base, _ = webhook
    good = one_good_change_each()
    bad = [
        graph.change("sub-a", SUBSCRIPTIONS["sub-b"], "u-3"),  # another subscription's secret
        graph.change("sub-a", SUBSCRIPTIONS["sub-a"][:-1], "u-4"),
        graph.change("sub-unknown", "whatever", "u-5"),
        {"subscriptionId": "sub-a"},  # no clientState at all
    ]
    response = post(base, "/graph/notifications", [good[0], *bad[:2], good[1], *bad[2:]])
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 2, "rejected": 4}

    events = graph_queue(fleet_under_test)
    assert [(e["type"], e["subject"], e["source"]) for e in events] == [
        ("graph.change_notification", "sub-a", "msgraph"),
        ("graph.change_notification", "sub-b", "msgraph"),
    ]
    assert [e["data"]["resourceData"]["id"] for e in events] == ["u-1", "u-2"]
    assert all("clientState" not in e["data"] for e in events)
    assert "SUBSCRIPTIONS" not in json.dumps(events) and SUBSCRIPTIONS["sub-a"] not in json.dumps(events)

    metrics = httpx.get(f"{base}/metrics", timeout=10).text
    assert 'fleet_graph_notifications_rejected_total{reason="client_state_mismatch"} 2.0' in metrics
    assert 'fleet_graph_notifications_rejected_total{reason="unknown_subscription"} 1.0' in metrics


def test_a_new_subscription_and_a_renewed_secret_are_accepted_at_once_despite_the_cache(
    fleet_under_test: FleetUnderTest, webhook: tuple[str, bytes], engine: Engine
) -> None:
    base, _ = webhook
    first = post(base, "/graph/notifications", [graph.change("sub-a", SUBSCRIPTIONS["sub-a"], "u-1")])
    assert first.json() == {"accepted": 1, "rejected": 0}  # sub-a's secret is cached now
    now = datetime.now(UTC)
    with engine.begin() as connection:
        renewal = graph_subscriptions.update().where(graph_subscriptions.c.id == "sub-a")
        connection.execute(renewal.values(client_state="renewed-a"))
        connection.execute(
            graph_subscriptions.insert().values(
                id="sub-c", resource="users", change_type="updated", notification_url="https://fleet.example",
                client_state="state-c", expires_at=now + timedelta(days=2), status="active", created_at=now,
                updated_at=now,
            )
        )  # fmt: skip
    items = [
        graph.change("sub-a", "renewed-a", "u-2"),
        graph.change("sub-c", "state-c", "u-3"),
        graph.change("sub-c", "not-state-c", "u-4"),
    ]
    response = post(base, "/graph/notifications", items)
    assert response.json() == {"accepted": 2, "rejected": 1}
    assert [e["data"]["resourceData"]["id"] for e in graph_queue(fleet_under_test)] == ["u-1", "u-2", "u-3"]


def test_a_removed_or_rekeyed_subscriptions_old_secret_is_refused_at_once_despite_the_cache(
    fleet_under_test: FleetUnderTest, webhook: tuple[str, bytes]
) -> None:
    base, _ = webhook
    old = one_good_change_each()
    assert post(base, "/graph/notifications", old).json() == {"accepted": 2, "rejected": 0}  # both cached
    store = fleet_under_test.fleet.domains.graph.stored_subscriptions  # as the subscription tasks write it
    store.remove("sub-a")
    rekeyed = store.find("sub-b")
    assert rekeyed is not None
    store.save(dataclasses.replace(rekeyed, client_state="state-b-rotated"))

    def refused_at_the_web() -> bool:  # the broadcast crosses Redis to the web process
        return bool(post(base, "/graph/notifications", old).json() == {"accepted": 0, "rejected": 2})

    wait_until(refused_at_the_web, timeout=2, interval=0.05, what="the old secrets refused")
    again = post(base, "/graph/notifications", [graph.change("sub-b", "state-b-rotated", "u-3")])
    assert again.json() == {"accepted": 1, "rejected": 0}


def test_lifecycle_notifications_become_their_own_events(
    fleet_under_test: FleetUnderTest, webhook: tuple[str, bytes]
) -> None:
    base, _ = webhook
    kinds = ["reauthorizationRequired", "subscriptionRemoved", "missed"]
    items = [graph.lifecycle("sub-b", SUBSCRIPTIONS["sub-b"], kind) for kind in kinds]
    items.append(graph.lifecycle("sub-b", "wrong", "subscriptionRemoved"))
    response = post(base, "/graph/lifecycle", items)
    assert response.json() == {"accepted": 3, "rejected": 1}
    events = graph_queue(fleet_under_test)
    assert [(e["type"], e["data"]["lifecycleEvent"]) for e in events] == [
        ("graph.lifecycle_notification", kind) for kind in kinds
    ]


def test_the_same_notification_delivered_twice_is_enqueued_under_one_id(
    fleet_under_test: FleetUnderTest, webhook: tuple[str, bytes]
) -> None:
    base, _ = webhook
    items = [
        graph.change("sub-a", SUBSCRIPTIONS["sub-a"], "u-1"),
        graph.change("sub-a", SUBSCRIPTIONS["sub-a"], "u-2"),
    ]
    for _ in range(2):
        assert post(base, "/graph/notifications", items).status_code == 202
    first, second = graph_queue(fleet_under_test)[:2], graph_queue(fleet_under_test)[2:]
    assert [e["id"] for e in first] == [e["id"] for e in second]
    assert len({e["id"] for e in first}) == 2  # different notifications, different ids


def test_a_rich_notification_is_decrypted_and_a_tampered_or_unproven_one_is_refused(
    fleet_under_test: FleetUnderTest, webhook: tuple[str, bytes], issuer: graph.TokenIssuer
) -> None:
    base, cert_pem = webhook
    state = SUBSCRIPTIONS["sub-a"]
    resource = {"id": "u-9", "displayName": "Ada Lovelace", "mail": "ada@example.com"}
    rich = graph.change("sub-a", state, "u-9", encryptedContent=graph.encrypt(cert_pem, "cert-1", resource))
    content = graph.encrypt(cert_pem, "cert-1", {"id": "u-10", "displayName": "Mallory"})
    data = bytearray(base64.b64decode(content["data"]))
    data[-1] ^= 0x01
    tampered = graph.change(
        "sub-a", state, "u-10", encryptedContent={**content, "data": base64.b64encode(bytes(data)).decode()}
    )
    response = post(base, "/graph/notifications", [rich, tampered], validationTokens=[issuer.token()])
    assert response.json() == {"accepted": 1, "rejected": 1}
    [event] = graph_queue(fleet_under_test)
    assert event["data"]["resourceDataDecrypted"] == resource
    assert event["data"]["encryptedContent"] == rich["encryptedContent"]
    # a v2.0 token (the app registration accepts v2.0 tokens): the tenant's v2.0 issuer, `azp`
    content = graph.encrypt(cert_pem, "cert-1", {"id": "u-11"})
    v2 = post(
        base,
        "/graph/notifications",
        [graph.change("sub-a", state, "u-11", encryptedContent=content)],
        validationTokens=[issuer.token(version="2.0")],
    )
    assert v2.json() == {"accepted": 1, "rejected": 0}
    assert graph_queue(fleet_under_test).pop()["data"]["resourceDataDecrypted"] == {"id": "u-11"}

    for tokens in (
        [],
        [issuer.foreign_token()],
        [issuer.token(audience="another-app")],
        [issuer.token(expires_in=-60)],
        [issuer.token(issued_to="not-graph")],
    ):
        refused = post(base, "/graph/notifications", [rich], validationTokens=tokens)
        assert refused.json() == {"accepted": 0, "rejected": 1}, tokens
    assert len(graph_queue(fleet_under_test)) == 2


def test_a_redelivered_notification_takes_effect_once(
    fleet_under_test: FleetUnderTest, webhook: tuple[str, bytes]
) -> None:
    base, _ = webhook
    fleet_under_test.start_worker(concurrency=1)  # one process: messages are taken in order
    state = SUBSCRIPTIONS["sub-a"]
    removed = graph.change("sub-a", state, "u-1", changeType="deleted")  # no Graph call needed
    for _ in range(2):
        assert post(base, "/graph/notifications", [removed]).json() == {"accepted": 1, "rejected": 0}
    sentinel = graph.change("sub-a", state, "u-2", changeType="deleted")  # taken after both
    assert post(base, "/graph/notifications", [sentinel]).status_code == 202

    def journal() -> list[str]:
        return [
            entry["resource_id"] for entry in journal_entries(fleet_under_test.engine, "graph.user.deleted")
        ]

    wait_until(lambda: "u-2" in journal(), timeout=60, what="the sentinel's journal entry")
    assert sorted(journal()) == ["u-1", "u-2"]
    assert fleet_under_test.letters() == []
