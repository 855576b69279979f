"""`POST /events` refusing what it must refuse, clearly, with nothing enqueued; API keys through
`fleet keys`."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.conftest import FleetUnderTest
from tests.integration.test_ingress_events import api_key, problem
from tests.support.ingress import start_web

pytestmark = pytest.mark.integration

LIMIT = 64 * 1024


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """Redis only: what is checked here happens before any broker is involved, or is Redis-specific."""
    return redis_url


def event(event_id: str, event_type: str = "demo.deposit_recorded", **extra: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "tests",
        "type": event_type,
        "data": {"account": "acc-1", "amount": 1},
        **extra,
    }


STRUCTURED = {"Content-Type": "application/cloudevents+json"}
BATCH = {"Content-Type": "application/cloudevents-batch+json"}


@pytest.fixture
def web(fleet_under_test: FleetUnderTest) -> Iterator[str]:
    _, base = start_web(
        fleet_under_test, env={"FLEET_INGRESS_MAX_BODY_BYTES": str(LIMIT), "FLEET_API_KEY_CACHE_SECONDS": "0"}
    )
    yield base


def queued(fleet: FleetUnderTest) -> int:
    return int(fleet.redis.llen(fleet.runtime.settings.queue_name("fleet.demo")))


def test_bad_requests_get_a_4xx_naming_the_problem_and_nothing_is_enqueued(
    fleet_under_test: FleetUnderTest, web: str
) -> None:
    token = api_key(fleet_under_test, "demo.deposit_recorded")
    with httpx.Client(base_url=web, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        cases: list[tuple[bytes | str, dict[str, str], int, str]] = [
            ("{not json", STRUCTURED, 400, "malformed JSON"),
            (json.dumps([event("a")]), STRUCTURED, 400, "must be a JSON object"),
            (json.dumps({**event("a"), "time": "yesterday"}), STRUCTURED, 422, "RFC 3339"),
            (json.dumps(event("")), STRUCTURED, 422, "must not be empty"),
            (json.dumps(event("a", "demo.nobody_handles_this")), STRUCTURED, 422, "no handler"),
            (json.dumps(event("a", "demo.flaky_requested")), STRUCTURED, 403, "may not publish"),
            (
                json.dumps([event("ok"), {**event("b"), "specversion": "0.3"}]),
                BATCH,
                422,
                "event 1: specversion",
            ),
            (
                json.dumps({**event("a"), "data": {"account": "acc-1", "amount": -5}}),
                STRUCTURED,
                422,
                "data.amount: Input should be greater than 0",
            ),
            (
                json.dumps([event("ok"), {**event("b"), "data": {"account": "acc-1"}}]),
                BATCH,
                422,
                "event 1: data.amount: required field is missing",
            ),
            (
                json.dumps({**event("a"), "dataschema": "urn:fleet:schema:demo.deposit_recorded:2"}),
                STRUCTURED,
                422,
                "send 'urn:fleet:schema:demo.deposit_recorded:1'",
            ),
            (json.dumps(event("a")), {"Content-Type": "application/json"}, 415, "ce-specversion"),
            (json.dumps(event("a")), {"Content-Type": "text/html"}, 415, "not a CloudEvents mode"),
            (json.dumps({**event("a"), "data": "x" * 300_000}), STRUCTURED, 413, "over the limit"),
            ("x" * (LIMIT + 1), BATCH, 413, "over the limit"),
        ]
        for body, headers, status, says in cases:
            response = client.post("/events", content=body, headers=headers)
            assert response.status_code == status, (says, response.text)
            assert says in problem(response)["detail"], response.text

        no_key = httpx.post(f"{web}/events", content=json.dumps(event("a")), headers=STRUCTURED)
        assert no_key.status_code == 401 and no_key.headers["www-authenticate"].startswith("Bearer")
        forged = token[:-4] + "AAAA"
        wrong = client.post(
            "/events",
            content=json.dumps(event("a")),
            headers={**STRUCTURED, "Authorization": f"Bearer {forged}"},
        )
        assert wrong.status_code == 401
    assert queued(fleet_under_test) == 0


def test_an_event_without_specversion_is_refused_naming_it_and_nothing_is_enqueued(
    fleet_under_test: FleetUnderTest, web: str
) -> None:
    token = api_key(fleet_under_test, "demo.deposit_recorded")
    unversioned = {k: v for k, v in event("nv-1").items() if k != "specversion"}
    with httpx.Client(base_url=web, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        one = client.post("/events", content=json.dumps(unversioned), headers=STRUCTURED)
        batch = client.post("/events", content=json.dumps([event("nv-2"), unversioned]), headers=BATCH)
    assert one.status_code == 422, one.text
    assert problem(one)["field"] == "specversion"
    assert batch.status_code == 422, batch.text
    assert (problem(batch)["field"], problem(batch)["index"]) == ("specversion", 1)
    assert queued(fleet_under_test) == 0


def test_an_endless_body_is_refused_while_it_is_being_read(
    fleet_under_test: FleetUnderTest, web: str
) -> None:
    token = api_key(fleet_under_test, "demo.*")
    host, port = web.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(
            b"POST /events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/cloudevents-batch+json\r\n"
            + f"Authorization: Bearer {token}\r\n\r\n".encode()
        )
        chunk = b"x" * 16384
        for _ in range(LIMIT // len(chunk) + 2):  # past the limit, and the body never ends
            connection.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        answer = connection.recv(65536).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert queued(fleet_under_test) == 0


def test_api_keys_are_listed_without_secrets_and_a_revoked_key_is_refused(
    fleet_under_test: FleetUnderTest, web: str
) -> None:
    token = api_key(fleet_under_test, "demo.*")
    key_id = token.split("_")[1]
    listed = fleet_under_test.cli("keys", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["id"], row["event_types"], row["revoked_at"]) == (key_id, ["demo.*"], None)
    assert token.split("_", 2)[2] not in listed.stdout

    headers = {**STRUCTURED, "Authorization": f"Bearer {token}"}
    assert httpx.post(f"{web}/events", content=json.dumps(event("k-1")), headers=headers).status_code == 202
    revoked = fleet_under_test.cli("keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    refused = httpx.post(f"{web}/events", content=json.dumps(event("k-2")), headers=headers)
    assert refused.status_code == 401 and "revoked" in problem(refused)["detail"]
    assert fleet_under_test.cli("keys", "list").stdout.strip() == ""
    assert queued(fleet_under_test) == 1
