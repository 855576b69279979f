"""Runtime schedules on a real beat and worker: a schedule added from the CLI fires within seconds,
a change takes effect, a removal stops it, and all of it outlives a beat restart (it is stored in
PostgreSQL)."""

from __future__ import annotations

import getpass
import json
import time

import pytest
from sqlalchemy import select

from infra.audit import SqlAuditLog
from infra.schema import demo_deposits
from tests.integration.conftest import FleetUnderTest
from tests.support.processes import FleetProcess, wait_until

pytestmark = pytest.mark.integration

PICKED_UP = 60.0
"""Seconds a change may take to show in deposits (beat, the broker, a worker, on a busy machine)."""
STARTUP = 180.0


@pytest.fixture
def broker_url(redis_url: str) -> str:
    return redis_url


def _deposits(fut: FleetUnderTest, account: str) -> int:
    with fut.engine.connect() as connection:
        query = select(demo_deposits.c.event_id).where(demo_deposits.c.account == account)
        return len(list(connection.execute(query)))


def _ok(fut: FleetUnderTest, *args: str) -> str:
    result = fut.cli(*args)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def _leading_beat(fut: FleetUnderTest) -> FleetProcess:
    beat = fut.start("beat")
    beat.wait_for_log("leading, firing jobs", timeout=STARTUP)
    return beat


def _stays(fut: FleetUnderTest, account: str, seconds: float) -> None:
    """No more deposits for `account`, once runs already sent have landed."""
    time.sleep(2)
    before = _deposits(fut, account)
    time.sleep(seconds)
    assert _deposits(fut, account) == before, f"{account!r} still gets deposits"


def test_a_schedule_added_changed_and_removed_from_the_cli_while_beat_runs_survives_restarts(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    fut.env["FLEET_BEAT_LOCK_TIMEOUT"] = "5"
    fut.start_worker(concurrency=2)
    beat = _leading_beat(fut)

    _ok(fut, "schedules", "add", "pulse", "--publish", "demo.deposit_recorded", "--every", "1",
        "--data", json.dumps({"account": "first", "amount": 1}))  # fmt: skip
    wait_until(lambda: _deposits(fut, "first") >= 2, timeout=PICKED_UP, what="the added schedule to fire")
    assert "schedules reloaded: added pulse" in beat.log()
    assert "pulse" in _ok(fut, "schedules", "list")

    _ok(fut, "schedules", "set", "pulse", "--data", json.dumps({"account": "second", "amount": 1}))
    wait_until(lambda: _deposits(fut, "second") >= 2, timeout=PICKED_UP, what="the changed schedule")
    _stays(fut, "first", 3)

    beat.stop()
    fired = _deposits(fut, "second")
    beat = _leading_beat(fut)
    wait_until(
        lambda: _deposits(fut, "second") >= fired + 2, timeout=PICKED_UP, what="the schedule after a restart"
    )

    _ok(fut, "schedules", "remove", "pulse")
    _stays(fut, "second", 4)
    assert "removed pulse" in beat.log()
    beat.stop()
    _leading_beat(fut)
    _stays(fut, "second", 4)
    assert "pulse" not in _ok(fut, "schedules", "list")

    changes = [(e.actor, e.role, e.action, e.target) for e in reversed(SqlAuditLog(fut.engine).recent())]
    assert changes == [
        (getpass.getuser(), "cli", f"schedules.{change}", "pulse") for change in ("add", "set", "remove")
    ]


def test_changes_that_cannot_run_are_refused_and_the_codes_jobs_cannot_be_changed(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    fut.env["FLEET_SCHEDULES"] = json.dumps({"seeded": {"publish": "demo.deposit_recorded", "every": 60}})
    for args, message in (
        (("add", "typo", "--publish", "demo.deposit_recordd", "--every", "5"), "no event type"),
        (("add", "bad", "--publish", "demo.deposit_recorded", "--cron", "0 8 * * * Mars/Base"), "time zone"),
        (("add", "seeded", "--publish", "demo.deposit_recorded", "--every", "5"), "exists already"),
        (("set", "nope", "--every", "5"), "no configured schedule 'nope'"),
        (("remove", "relay-outbox"), "built into the code"),
    ):
        result = fut.cli("schedules", *args)
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr)
    _ok(fut, "schedules", "set", "seeded", "--cron", "0 8 * * *", "--tz", "Europe/Amsterdam")
    listing = _ok(fut, "schedules", "list")
    assert "cron 0 8 * * * Europe/Amsterdam" in listing
    _ok(fut, "schedules", "remove", "seeded")  # a seeded job stays removed, whatever the seed says
    assert "seeded" not in _ok(fut, "schedules", "list")
    _ok(fut, "schedules", "add", "seeded", "--publish", "demo.deposit_recorded", "--every", "30")
    assert "every 30s" in _ok(fut, "schedules", "list")
