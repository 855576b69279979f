"""A queue prefix without a separator gets one: producer, CLI and worker agree on the names."""

from __future__ import annotations

from tests.integration.conftest import FleetUnderTest
from tests.integration.helpers import deposit
from tests.support.processes import wait_until


def test_a_prefix_without_a_separator_names_queues_with_a_dot(fleet_under_test: FleetUnderTest) -> None:
    fut = fleet_under_test
    prefix = fut.env["FLEET_QUEUE_PREFIX"]
    assert not prefix.endswith((".", ":", "-", "_"))
    fut.fleet.publisher.publish([deposit("named-1")])

    status = fut.cli("status")
    assert status.returncode == 0, status.stderr
    assert f"{prefix}.fleet.demo" in status.stdout
    assert f"{prefix}fleet.demo" not in status.stdout

    fut.start_worker()
    wait_until(lambda: fut.deposits() == {"named-1": 1}, timeout=30, what="the deposit")
