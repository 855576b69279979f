"""A domain installed as a package of its own (examples/fleet-tickets), with the fleet's code
untouched: installed with pip, enabled with FLEET_DOMAINS, migrated, run by a real worker.

The commands are docs/adding-an-event-type.md's, run in its order; the test fails if the guide
shows a command it does not run, or code the example package does not hold."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text

from engine.records import Filter
from infra.db import make_engine
from infra.dead_letters import SqlDeadLetters
from infra.ledger import SqlLedger
from tests.integration.conftest import FleetUnderTest
from tests.support.ingress import start_web
from tests.support.processes import wait_until
from tests.support.worker_metrics import start_with_metrics

ROOT = Path(__file__).parents[2]
GUIDE = ROOT / "docs" / "adding-an-event-type.md"
EXAMPLE = ROOT / "examples" / "fleet-tickets"
TICKET = """--data '{"title": "Printer on fire", "customer": "c-1"}'"""

COMMANDS = [
    "pip install --no-deps ./examples/fleet-tickets",
    "export FLEET_DOMAINS=demo,tickets",
    "fleet db upgrade",
    "fleet worker",
    f"fleet publish tickets.ticket_opened {TICKET} --id t-1",
    f"fleet publish tickets.ticket_opened {TICKET} --id t-1",
    """fleet publish tickets.ticket_opened --data '{"customer": "c-1"}' --id t-2""",
    "fleet dlq list",
    "pytest examples/fleet-tickets/tests",
]


def fenced(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)


def test_the_guide_shows_the_commands_this_test_runs_and_the_example_packages_code() -> None:
    shown = [line for block in fenced("sh") for line in block.splitlines() if line.strip()]
    assert shown == COMMANDS
    sources = "\n".join(path.read_text() for path in EXAMPLE.rglob("*.py"))
    pyproject = (EXAMPLE / "pyproject.toml").read_text()
    for block in fenced("python"):
        assert block in sources, f"the guide shows code the example does not hold:\n{block}"
    for block in fenced("toml"):
        assert block in pyproject


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """Redis only: what is under test is how a domain is found, not the broker."""
    return redis_url


@pytest.fixture
def tickets_fleet(fleet_env: dict[str, str], fresh_database: str, tmp_path: Path) -> Iterator[FleetUnderTest]:
    """A fleet on a database of its own, which `fleet db upgrade` migrates with the domain's tables."""
    engine = make_engine(fresh_database)
    fleet = FleetUnderTest({**fleet_env, "FLEET_DATABASE_URL": fresh_database}, engine, tmp_path)
    yield fleet
    fleet.close()
    engine.dispose()


def metric(port: int, name: str, **labels: str) -> float:
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def test_an_installed_domain_handles_its_events_exactly_once(
    tickets_fleet: FleetUnderTest, tmp_path: Path
) -> None:
    fleet, engine = tickets_fleet, tickets_fleet.engine
    site = tmp_path / "site-packages"
    env = {
        **fleet.runtime_env(),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PIP_TARGET": str(site),  # the fleet's environment stays as it is: the package goes here
        "PYTHONPATH": str(site),
    }
    port = 0
    for command in COMMANDS:
        if command.startswith("export "):
            name, _, value = command.removeprefix("export ").partition("=")
            env[name] = value
            continue
        if command == "fleet worker":
            port = start_with_metrics(
                fleet, tmp_path, env={k: env[k] for k in ("FLEET_DOMAINS", "PYTHONPATH")}
            )
            continue
        if command == "fleet dlq list":
            wait_until(lambda: letters(engine), timeout=60, what="the refused ticket's dead letter")
        ran = subprocess.run(
            command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert ran.returncode == 0, f"{command}\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"
        if command == "fleet dlq list":
            assert "t-2" in ran.stdout and "InvalidEvent" in ran.stdout, ran.stdout
        if command.startswith("pytest"):
            assert "2 passed" in ran.stdout, ran.stdout

    # Exactly once: one row for t-1, sent twice, and its follow-up's effect.
    wait_until(
        lambda: acknowledged(engine) == [("t-1", True)], timeout=60, what="t-1 opened and acknowledged"
    )
    assert SqlLedger(engine).is_done("tickets.open", ("fleet:cli", "t-1"))
    [letter] = letters(engine)
    assert (letter.handler, letter.event_id, letter.error_type) == ("tickets.open", "t-2", "InvalidEvent")

    # The worker's metrics name the domain's handlers.
    def counted() -> bool:
        return (
            metric(port, "fleet_events_processed_total", handler="tickets.acknowledge", outcome="handled")
            == 1
        )

    wait_until(counted, timeout=30, what="the acknowledgement counted")
    outcomes = {
        outcome: metric(port, "fleet_events_processed_total", handler="tickets.open", outcome=outcome)
        for outcome in ("handled", "duplicate", "dead_lettered")
    }
    assert outcomes == {"handled": 1, "duplicate": 1, "dead_lettered": 1}

    # The web process knows the domain: ready on the migrated database, its events in the console.
    _, base = start_web(
        fleet,
        env={k: env[k] for k in ("FLEET_DOMAINS", "PYTHONPATH")} | {"FLEET_CONSOLE_TRUSTED_HEADER": "X-User"},
    )
    assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
    page = httpx.get(f"{base}/console/events", headers={"X-User": "ops"}, timeout=10)
    assert page.status_code == 200
    assert ">tickets.ticket_opened</option>" in page.text
    assert ">tickets.acknowledgement_due</option>" in page.text


def test_a_domain_no_installed_package_declares_stops_the_fleet_at_start(
    fleet_under_test: FleetUnderTest,
) -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "workers", "status"],
        env=fleet_under_test.runtime_env({"FLEET_DOMAINS": "demo,tickets"}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 1
    assert ran.stderr.startswith("Error: FLEET_DOMAINS names 'tickets', which no installed package declares")


def letters(engine: Engine) -> list[Any]:
    return list(SqlDeadLetters(engine).find(Filter()))


def acknowledged(engine: Engine) -> list[tuple[str, bool]]:
    with engine.connect() as connection:
        exists = connection.execute(text("SELECT to_regclass('tickets') IS NOT NULL")).scalar()
        if not exists:
            return []
        return [(row[0], row[1]) for row in connection.execute(text("SELECT id, acknowledged FROM tickets"))]
