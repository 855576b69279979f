"""Restarting a worker's pool from the console: a real worker gets new child processes, keeps
handling events, and the restart is in the audit log; a viewer may not do it."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from infra.audit import SqlAuditLog
from tests.integration.conftest import FleetUnderTest
from tests.integration.helpers import deposit
from tests.integration.test_console_access import client_for, log_in
from tests.support.processes import wait_until
from workers.bootstrap import Runtime

pytestmark = pytest.mark.integration


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """`pool_restart` is a broadcast like grow and shrink; one broker keeps the test short."""
    return redis_url


def pool_pids(fut: FleetUnderTest) -> dict[str, set[int]]:
    stats = fut.runtime.app.control.inspect(timeout=3.0, limit=1).stats() or {}  # one worker
    return {name: set(info["pool"]["processes"]) for name, info in stats.items()}


def test_an_operator_restarts_a_pool_and_the_worker_handles_events_with_new_children(
    fleet_under_test: FleetUnderTest, console_runtime: Runtime, engine: Engine
) -> None:
    fut = fleet_under_test
    fut.start_worker(concurrency=2)
    fut.fleet.publisher.publish([deposit("before-1"), deposit("before-2")])
    wait_until(lambda: len(fut.deposits()) == 2, timeout=60, what="2 deposits before the restart")
    (name, before), *others = pool_pids(fut).items()
    assert not others and len(before) == 2

    client = client_for(console_runtime)
    page = client.get("/console/workers")
    assert "Restart pool" not in page.text  # not signed in: the login page
    token = log_in(client, "bob")
    refused = client.post(
        "/console/workers/action", data={"worker": name, "action": "restart", "csrf": token}
    )
    assert refused.status_code == 403  # a viewer
    assert pool_pids(fut)[name] == before

    client = client_for(console_runtime)
    token = log_in(client, "alice")
    page = client.get("/console/workers")
    assert f'data-confirm="Restart pool on {name}?"' in page.text
    no_token = client.post("/console/workers/action", data={"worker": name, "action": "restart"})
    assert no_token.status_code == 403
    done = client.post("/console/workers/action", data={"worker": name, "action": "restart", "csrf": token})
    assert done.status_code == 303
    assert "reload started" in client.get("/console/workers").text  # the worker's reply, shown

    # A child notices the restart when it next asks for work (after its current task), so keep
    # work coming until none of the old children is left.
    sent = 2

    def replaced() -> set[int] | None:
        nonlocal sent
        pids = pool_pids(fut).get(name, set())
        if len(pids) == 2 and not pids & before:
            return pids
        for n in range(4):  # messages of their own, slow enough to keep both children busy
            fut.fleet.publisher.publish([deposit(f"during-{sent + n}", work_ms=300)])
        sent += 4
        return None

    after = wait_until(replaced, timeout=60, interval=0.5, what="two new child processes")
    fut.fleet.publisher.publish([deposit(f"after-{n}") for n in range(20)])
    wait_until(lambda: len(fut.deposits()) == sent + 20, timeout=60, what="every deposit after the restart")
    assert max(fut.deposits().values()) == 1
    assert pool_pids(fut)[name] == after  # the new children did the work, and stay

    entries = [e for e in SqlAuditLog(engine).recent() if e.action.startswith("workers.")]
    assert [(e.actor, e.role, e.action, e.target) for e in entries] == [
        ("alice", "operator", "workers.restart", name)
    ]
    assert "reload started" in entries[0].detail
