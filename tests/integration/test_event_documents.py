"""The event contracts as published: AsyncAPI 3.0 at /asyncapi.json and from `fleet events
schema`, valid by the AsyncAPI project's own parser; `fleet events list` and `release --check`."""

from __future__ import annotations

import copy
import json

import httpx
import pytest

from handlers.registry import Registry
from tests.integration.conftest import FleetUnderTest
from tests.support import asyncapi
from tests.support.ingress import start_web

pytestmark = pytest.mark.integration


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """Redis only: the documents depend on the route table, not on the broker."""
    return redis_url


def test_the_served_asyncapi_document_is_valid_and_describes_every_route(
    fleet_under_test: FleetUnderTest,
) -> None:
    _, base = start_web(fleet_under_test)
    document = httpx.get(f"{base}/asyncapi.json", timeout=30).json()
    parsed = asyncapi.parse(document)
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr
    routes = Registry().routes()
    assert parsed.stdout.startswith("valid: ")
    assert {route.task for route in routes} <= set(document["operations"])
    assert set(document["channels"]) >= {route.queue for route in routes}
    settings = fleet_under_test.runtime.settings
    assert document["channels"]["fleet.demo"]["address"] == settings.queue_name("fleet.demo")
    assert document["servers"]["broker"]["protocol"] == "redis"
    deposit = document["components"]["schemas"]["demo.deposit_recorded"]
    assert deposit["properties"]["data"] == {"$ref": "#/components/schemas/DepositRecorded"}
    amount = document["components"]["schemas"]["DepositRecorded"]["properties"]["amount"]
    assert amount["exclusiveMinimum"] == 0

    broken = copy.deepcopy(document)
    del broken["operations"]["fleet.demo.record_deposit"]["channel"]
    assert asyncapi.parse(broken).returncode == 1, "the parser refuses a broken document"

    printed = fleet_under_test.cli("events", "schema")
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout) == document


def test_the_cli_lists_every_event_type_and_checks_the_released_schemas(
    fleet_under_test: FleetUnderTest,
) -> None:
    listed = fleet_under_test.cli("events", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["TYPE", "QUEUE", "TASK", "IDEMPOTENCY", "ATTEMPTS", "DATA", "DATASCHEMA"]
    assert len(lines) == 1 + len(Registry().routes())
    assert any(
        line.split()[0] == "demo.deposit_recorded" and "urn:fleet:schema:demo.deposit_recorded:1" in line
        for line in lines
    )
    checked = fleet_under_test.cli("events", "release", "--check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"{len(Registry().routes())} schemas hold"
