"""`fleet web` on a database it cannot use: readiness names what is missing, and /metrics serves
what it can, counting the readers that failed."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.migrate import head
from tests.integration.conftest import FleetUnderTest
from tests.support.ingress import start_web


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """Redis only: what is under test is the web process's reading of the database."""
    return redis_url


def samples(body: str, name: str) -> dict[str, float]:
    return {
        sample.labels.get("collector", ""): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == name
    }


def test_an_unmigrated_database_is_not_ready_and_metrics_are_still_served(
    fleet_under_test: FleetUnderTest, fresh_database: str
) -> None:
    _, base = start_web(fleet_under_test, env={"FLEET_DATABASE_URL": fresh_database})

    ready = httpx.get(f"{base}/readyz", timeout=10)
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["database"] == "ok"
    assert head() is not None
    assert head() in checks["schema"], checks

    scrape = httpx.get(f"{base}/metrics", timeout=10)
    assert scrape.status_code == 200, scrape.text[-2000:]
    errors = samples(scrape.text, "fleet_scrape_errors_total")
    assert errors.get("fleet_state.dead_letters", 0) >= 1, errors
    assert errors.get("fleet_state.outbox", 0) >= 1, errors
    assert "fleet_queue_depth" in scrape.text, "the broker's gauges are still served"
