"""Two real `fleet beat` processes at once: every slot fired exactly once, and a standby that takes
over when the leader is killed, with the takeover gap caught up.

No worker runs here: what beat sent is read straight from the broker queue, so a slot sent twice
would show as two messages, whatever a worker would later make of them.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import signal
import time
from collections import Counter, defaultdict
from typing import Any

import pytest

from infra.schedules.state import ScheduleState
from tests.integration.conftest import FleetUnderTest
from tests.support.processes import wait_until

pytestmark = pytest.mark.integration

LOCK_TIMEOUT = 3.0
CATCH_UP_JOBS = {"tick-2s": 2.0, "tick-3s": 3.0}


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """Beat is broker-agnostic; the Redis broker lets the test read the queue as a list."""
    return redis_url


def _sent_slots(fut: FleetUnderTest) -> dict[str, list[float]]:
    queue = fut.runtime.settings.queue_name("fleet.maintenance")
    slots: dict[str, list[float]] = defaultdict(list)
    for raw in fut.redis.lrange(queue, 0, -1):
        message: dict[str, Any] = json.loads(raw)
        assert message["headers"]["task"] == "fleet.schedules.run"
        _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        slots[kwargs["job"]].append(float(kwargs["slot"]))
    return slots


def _sending_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "beat: sending" in line]


def test_two_beats_fire_every_slot_once_and_the_standby_takes_over(fleet_under_test: FleetUnderTest) -> None:
    fut = fleet_under_test
    schedules = {
        name: {
            "publish": "demo.deposit_recorded",
            "every": every,
            "catch_up": True,
            "data": {"account": name},
        }
        for name, every in CATCH_UP_JOBS.items()
    }
    env = {"FLEET_BEAT_LOCK_TIMEOUT": str(LOCK_TIMEOUT), "FLEET_SCHEDULES": json.dumps(schedules)}
    fut.env.update(env)
    state = ScheduleState(fut.redis, fut.env["FLEET_KEY_PREFIX"])

    first = fut.start("beat")
    first.wait_for_log("leading, firing jobs", timeout=60)
    second = fut.start("beat")
    second.wait_for_log("beat: Starting...", timeout=60)
    time.sleep(30)  # both running: only the leader fires
    leader = state.leader()
    assert leader is not None
    assert f":{first.pid}:" in leader
    assert _sending_lines(second.log()) == []

    killed_at = time.time()
    first.kill()  # SIGKILL: no chance to release the lock
    took_over = wait_until(
        lambda: (token := state.leader()) and f":{second.pid}:" in token,
        timeout=LOCK_TIMEOUT + 10,
        what="the standby beat to take the leader lock",
    )
    assert took_over
    print(
        f"\nstandby took over {time.time() - killed_at:.1f}s after SIGKILL (lock timeout {LOCK_TIMEOUT:g}s)"
    )
    time.sleep(30)
    second.stop()

    slots = _sent_slots(fut)
    for job, sent in slots.items():
        doubled = [slot for slot, times in Counter(sent).items() if times > 1]
        assert doubled == [], f"{job}: slots fired twice: {doubled}"
    for job, every in CATCH_UP_JOBS.items():
        ordered = sorted(slots[job])
        assert ordered[0] < killed_at - 10 and ordered[-1] > killed_at + 10, (job, ordered)
        gaps = [round(b - a, 3) for a, b in itertools.pairwise(ordered) if round(b - a, 3) != every]
        assert gaps == [], f"{job}: slots missed around the takeover: {gaps}"
        print(
            f"{job}: {len(ordered)} slots over {ordered[-1] - ordered[0]:.0f}s, each fired once, none missed"
        )
    assert slots["release-due-retries"], "the code's own jobs run under the same lock"
    assert _sending_lines(second.log()), "the standby fired after taking over"


def test_a_beat_stopped_cleanly_hands_over_at_once(fleet_under_test: FleetUnderTest) -> None:
    fut = fleet_under_test
    fut.env["FLEET_BEAT_LOCK_TIMEOUT"] = "60"  # a takeover here cannot be the lock expiring
    state = ScheduleState(fut.redis, fut.env["FLEET_KEY_PREFIX"])
    first = fut.start("beat")
    first.wait_for_log("leading, firing jobs", timeout=60)
    second = fut.start("beat")
    second.wait_for_log("beat: Starting...", timeout=60)
    os.killpg(first.pid, signal.SIGTERM)
    first.process.wait(30)
    second.wait_for_log("leading, firing jobs", timeout=30)
    token = state.leader()
    assert token is not None
    assert f":{second.pid}:" in token
