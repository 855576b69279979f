"""Validation tokens of rich Graph notifications: signing keys from a `file://` JWKS, v1.0 and
v2.0 tokens of the configured tenant, and a key problem that refuses rich items only, never the
validation handshake or plain notifications."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import Engine

from tests.integration.conftest import FleetUnderTest
from tests.integration.test_ingress_graph import SUBSCRIPTIONS, graph_queue, post, start_webhook
from tests.support import graph_notifications as graph
from tests.support.processes import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """Redis: the test reads the queue the webhook fills."""
    return redis_url


@pytest.fixture
def issuer(tmp_path: Path) -> graph.TokenIssuer:
    return graph.TokenIssuer(tmp_path, tenant="tenant-1", app_id="app-1")


def rich_change(cert_pem: bytes, resource_id: str) -> dict[str, object]:
    content = graph.encrypt(cert_pem, "cert-1", {"id": resource_id, "displayName": resource_id})
    return graph.change("sub-a", SUBSCRIPTIONS["sub-a"], resource_id, encryptedContent=content)


def test_keys_from_a_file_verify_v1_and_v2_tokens_of_the_tenant_and_no_others(
    fleet_under_test: FleetUnderTest, engine: Engine, tmp_path: Path, issuer: graph.TokenIssuer
) -> None:
    base, cert_pem = start_webhook(fleet_under_test, engine, tmp_path, issuer.jwks_path.as_uri())
    handshake = httpx.post(f"{base}/graph/notifications?validationToken={quote('hello there')}", timeout=10)
    assert (handshake.status_code, handshake.text) == (200, "hello there")

    accepted = {
        "v1.0": issuer.token(version="1.0"),
        "v2.0": issuer.token(version="2.0"),
    }
    for n, (version, token) in enumerate(accepted.items()):
        response = post(
            base, "/graph/notifications", [rich_change(cert_pem, f"u-{n}")], validationTokens=[token]
        )
        assert response.json() == {"accepted": 1, "rejected": 0}, version
    refused = {
        "another tenant, v1.0": issuer.token(version="1.0", tenant="tenant-2"),
        "another tenant, v2.0": issuer.token(version="2.0", tenant="tenant-2"),
        "not issued to Graph, v1.0": issuer.token(version="1.0", issued_to="someone"),
        "not issued to Graph, v2.0": issuer.token(version="2.0", issued_to="someone"),
        "a key not in the file": issuer.foreign_token(),
    }
    for why, token in refused.items():
        response = post(
            base, "/graph/notifications", [rich_change(cert_pem, "u-x")], validationTokens=[token]
        )
        assert response.json() == {"accepted": 0, "rejected": 1}, why
    assert [e["data"]["resourceDataDecrypted"]["id"] for e in graph_queue(fleet_under_test)] == ["u-0", "u-1"]


def test_unreadable_keys_refuse_rich_items_only_and_the_handshake_still_answers(
    fleet_under_test: FleetUnderTest, engine: Engine, tmp_path: Path, issuer: graph.TokenIssuer
) -> None:
    missing = (tmp_path / "no-such-keys.json").as_uri()
    base, cert_pem = start_webhook(fleet_under_test, engine, tmp_path, missing)
    for path in ("/graph/notifications", "/graph/lifecycle"):
        handshake = httpx.post(f"{base}{path}?validationToken=abc", timeout=10)
        assert (handshake.status_code, handshake.text) == (200, "abc")
    plain = graph.change("sub-b", SUBSCRIPTIONS["sub-b"], "u-plain")
    response = post(
        base,
        "/graph/notifications",
        [plain, rich_change(cert_pem, "u-rich")],
        validationTokens=[issuer.token()],
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1, "rejected": 1}
    assert [e["data"]["resourceData"]["id"] for e in graph_queue(fleet_under_test)] == ["u-plain"]
    metrics = httpx.get(f"{base}/metrics", timeout=10).text
    assert 'fleet_graph_notifications_rejected_total{reason="invalid_validation_tokens"} 1.0' in metrics


def test_a_jwks_url_the_fleet_cannot_read_is_refused_at_start_naming_the_setting(
    fleet_under_test: FleetUnderTest,
) -> None:
    for url in ("ftp://keys.example/jwks.json", "http://keys.example/jwks.json", "file://server/keys.json"):
        web = fleet_under_test.start("web", env={"FLEET_GRAPH_JWKS_URL": url})
        wait_until(lambda: not web.alive(), timeout=60, what="fleet web to refuse its settings")  # noqa: B023
        assert web.process.returncode != 0
        assert "FLEET_GRAPH_JWKS_URL" in web.log(), url
