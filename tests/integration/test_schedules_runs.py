"""Scheduled runs on a real worker: a paused job does not run (until resumed, or run by hand), a
long job is never started beside itself, and `fleet schedules` shows it all."""

from __future__ import annotations

import itertools
import json
import time

import pytest
from sqlalchemy import select

from handlers.envelope import new_event
from infra.schedules.state import ScheduleState
from infra.schema import demo_deposits
from tests.integration.conftest import FleetUnderTest
from tests.support.processes import wait_until

pytestmark = pytest.mark.integration

LONG_WORK_SECONDS = 3.0


@pytest.fixture
def broker_url(redis_url: str) -> str:
    return redis_url


def _deposits(fut: FleetUnderTest, account: str) -> list[str]:
    with fut.engine.connect() as connection:
        query = select(demo_deposits.c.event_id).where(demo_deposits.c.account == account)
        return list(connection.execute(query).scalars())


def test_paused_job_does_not_run_and_a_long_job_never_overlaps(fleet_under_test: FleetUnderTest) -> None:
    fut = fleet_under_test
    slow = new_event(
        "demo.deposit_recorded",
        {"account": "slow", "amount": 1, "work_ms": int(LONG_WORK_SECONDS * 1000)},
        source="test",
        id="slow-{slot}",  # a new event each run (the runner puts the slot in), so each run works
    )
    schedules = {
        "every-second": {
            "publish": "demo.deposit_recorded",
            "every": 1,
            "data": {"account": "paused", "amount": 1},
        },
        # The demo handler called as a job's task: runs take 3 s, slots come every second.
        "long": {
            "task": "fleet.demo.record_deposit",
            "kwargs": {"events": [slow.to_json().decode()]},
            "every": 1,
            "timeout": 30,
            "overlap": "skip",
        },
    }
    fut.env.update({"FLEET_SCHEDULES": json.dumps(schedules), "FLEET_BEAT_LOCK_TIMEOUT": "5"})
    state = ScheduleState(fut.redis, fut.env["FLEET_KEY_PREFIX"])

    paused = fut.cli("schedules", "pause", "every-second")
    assert paused.returncode == 0, paused.stderr
    fut.start_worker(concurrency=2)
    fut.start("beat").wait_for_log("leading, firing jobs", timeout=60)

    wait_until(
        lambda: sum(1 for run in state.history("long") if run["outcome"] == "succeeded") >= 3,
        timeout=90,
        what="three runs of the long job",
    )
    assert _deposits(fut, "paused") == []
    runs = state.runs()
    assert runs.get(("every-second", "skipped_paused"), 0) > 0
    assert runs.get(("long", "skipped_overlap"), 0) > 0, runs

    listing = fut.cli("schedules", "list")
    assert listing.returncode == 0, listing.stderr
    assert any(line.startswith("every-second") and "paused" in line for line in listing.stdout.splitlines())

    manual = fut.cli("schedules", "run", "every-second")  # by hand, even while paused
    assert manual.returncode == 0, manual.stderr
    wait_until(lambda: _deposits(fut, "paused"), timeout=30, what="the manual run's deposit")
    time.sleep(3)
    assert len(_deposits(fut, "paused")) == 1
    assert _deposits(fut, "paused")[0].startswith("every-second@manual-")

    resumed = fut.cli("schedules", "resume", "every-second")
    assert resumed.returncode == 0, resumed.stderr
    wait_until(lambda: len(_deposits(fut, "paused")) >= 3, timeout=30, what="runs after resume")

    history = sorted(state.history("long"), key=lambda run: run["started"])
    finished = [run for run in history if run["outcome"] == "succeeded"]
    for earlier, later in itertools.pairwise(finished):
        assert later["started"] >= earlier["finished"], f"two runs of 'long' overlapped: {earlier}, {later}"
    assert all(run["finished"] - run["started"] >= LONG_WORK_SECONDS for run in finished)
    assert sorted(_deposits(fut, "slow")) == sorted(f"slow-{run['slot']}" for run in finished)
    print(
        f"\nlong job: {len(finished)} runs, {runs[('long', 'skipped_overlap')]}+ slots skipped while one ran"
    )


def test_unknown_job_and_bad_configuration_are_refused(fleet_under_test: FleetUnderTest) -> None:
    fut = fleet_under_test
    unknown = fut.cli("schedules", "pause", "no-such-job")
    assert unknown.returncode != 0
    assert "no scheduled job 'no-such-job'" in unknown.stderr
    fut.env["FLEET_SCHEDULES"] = json.dumps(
        {"bad": {"publish": "demo.deposit_recorded", "cron": "61 * * * *"}}
    )
    bad = fut.cli("schedules", "list")
    assert bad.returncode != 0
    assert "schedule 'bad'" in bad.stderr
    assert "out of range" in bad.stderr
    fut.env["FLEET_SCHEDULES"] = json.dumps({"typo": {"publish": "demo.deposit_recorderd", "every": 5}})
    typo = fut.cli("schedules", "list")
    assert typo.returncode != 0
    assert "typo: no event type 'demo.deposit_recorderd'" in typo.stderr
