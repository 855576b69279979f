"""A broker that refuses connections, or accepts them and never answers: publishing from Python,
the CLI and the web ingress fails with a fleet error within the publish timeout, on both brokers,
never with a raw kombu error and never by hanging."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import fleet
from handlers.errors import BrokerUnavailable
from tests.integration.conftest import FleetUnderTest
from tests.support.black_hole import black_hole, closed_port
from tests.support.ingress import start_web

PUBLISH_TIMEOUT = 1.0
BOUND = 15.0  # far above the timeout (a shared, loaded machine); what it guards against is forever


def broker_url(scheme: str, port: int) -> str:
    if scheme == "redis":
        return f"redis://127.0.0.1:{port}/0"
    return f"amqp://guest:guest@127.0.0.1:{port}//"


@pytest.fixture(params=["redis", "amqp"])
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["black-hole", "closed-port"])
def unreachable(request: pytest.FixtureRequest, scheme: str) -> Iterator[str]:
    if request.param == "closed-port":
        yield broker_url(scheme, closed_port())
        return
    with black_hole() as port:
        yield broker_url(scheme, port)


def within_bound(call: Callable[[], Any]) -> tuple[BaseException | None, float]:
    """What `call` raised and how long it took; fails the test if it is still running at BOUND."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)  # a hung publish must not hang the run
    thread.start()
    thread.join(BOUND)
    assert outcome, f"publishing was still blocked after {BOUND:g}s"
    return outcome[0], time.monotonic() - started


def test_fleet_publish_raises_broker_unavailable_within_the_timeout(
    unreachable: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET_BROKER_URL", unreachable)
    monkeypatch.setenv("FLEET_REDIS_URL", redis_url)
    monkeypatch.setenv("FLEET_PUBLISH_TIMEOUT", str(PUBLISH_TIMEOUT))
    fleet.close()
    try:
        error, took = within_bound(
            lambda: fleet.publish(
                "demo.deposit_recorded", {"account": "a", "amount": 1}, source="t", id="e-1"
            )
        )
        assert isinstance(error, BrokerUnavailable), repr(error)
        assert (error.sent, error.unsent) == ((), ("e-1",))
        assert "the broker is unavailable" in str(error)
        assert took < PUBLISH_TIMEOUT * 3 + 2, took  # one timeout per step, and only one step waits
    finally:
        fleet.close()


def test_fleet_publish_cli_fails_with_a_clear_message_within_the_timeout(fleet_env: dict[str, str]) -> None:
    scheme = "redis" if fleet_env["FLEET_BROKER_URL"].startswith("redis") else "amqp"
    with black_hole() as port:  # the closed port fails the same way, sooner (the Python test above)
        env = {
            **os.environ,
            **fleet_env,
            "FLEET_BROKER_URL": broker_url(scheme, port),
            "FLEET_PUBLISH_TIMEOUT": "1",
        }
        started = time.monotonic()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "workers",
                "publish",
                "demo.deposit_recorded",
                "--data",
                '{"account": "a", "amount": 1}',
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=BOUND + 30,  # the CLI's own start-up besides
            check=False,
        )
        assert result.returncode != 0
        assert "nothing published: the broker is unavailable" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert time.monotonic() - started < BOUND + 30


def test_the_web_ingress_answers_503_within_the_timeout_when_the_broker_never_answers(
    fleet_under_test: FleetUnderTest,
) -> None:
    scheme = "redis" if fleet_under_test.env["FLEET_BROKER_URL"].startswith("redis") else "amqp"
    with black_hole() as port:
        _, base = start_web(
            fleet_under_test, env={"FLEET_BROKER_URL": broker_url(scheme, port), "FLEET_PUBLISH_TIMEOUT": "1"}
        )
        created = fleet_under_test.cli("keys", "create", "tests", "--type", "demo.*")
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip()
        event = {"specversion": "1.0", "id": "w-1", "source": "t", "type": "demo.deposit_recorded"}
        event["data"] = {"account": "a", "amount": 1}  # type: ignore[assignment]
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=BOUND
        ) as client:
            started = time.monotonic()
            response = client.post(
                "/events", content=json.dumps(event), headers={"Content-Type": "application/cloudevents+json"}
            )
            took = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert took < BOUND, took
