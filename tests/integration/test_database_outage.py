"""A database outage in the middle of work: no attempt spent, no dead letter, every effect once."""

from __future__ import annotations

import time

from tests.integration.conftest import FleetUnderTest
from tests.integration.helpers import deposit, flaky
from tests.integration.test_retries_and_dead_letters import retries_logged
from tests.support.ingress import TcpProxy
from tests.support.processes import FleetProcess, wait_until


def test_a_database_outage_mid_flight_spends_no_attempt_and_dead_letters_nothing(
    fleet_under_test: FleetUnderTest, postgres_url: str
) -> None:
    fut = fleet_under_test
    database_proxy, through_proxy = TcpProxy.before(postgres_url)
    try:
        worker = fut.start_worker(env={"FLEET_DATABASE_URL": through_proxy})
        run_through_an_outage(fut, worker, database_proxy)
    finally:
        database_proxy.stop()


def run_through_an_outage(fut: FleetUnderTest, worker: FleetProcess, database_proxy: TcpProxy) -> None:
    fut.fleet.publisher.publish([deposit("before-outage")])
    wait_until(lambda: fut.deposits() == {"before-outage": 1}, timeout=30, what="a deposit before the outage")

    database_proxy.stop()  # the worker's pooled connections break; new ones are refused
    for n in range(20):
        fut.fleet.publisher.publish([deposit(f"during-{n}"), deposit(f"during-{n}-b")])
    for n in range(3):  # each fails once on its own, on the attempt the handler first runs
        fut.fleet.publisher.publish([flaky(f"outage-flaky-{n}", fail_times=1)])
    wait_until(lambda: worker.log().count("message sent again") >= 10, timeout=30, what="messages sent back")
    time.sleep(6)  # long enough for attempts to burn through a deposit's five, if they counted
    database_proxy.start()

    wanted = {"before-outage"} | {f"during-{n}{b}" for n in range(20) for b in ("", "-b")}
    wanted |= {f"outage-flaky-{n}" for n in range(3)}
    wait_until(
        lambda: set(fut.deposits()) == wanted or fut.letters(),
        timeout=90,
        what="every deposit after the outage",
    )
    assert fut.letters() == []
    assert max(fut.deposits().values()) == 1
    log = worker.log()
    assert "dead-lettered" not in log
    failed = [line for line in log.splitlines() if "failed on attempt" in line and "outage-flaky" not in line]
    assert failed == [], "no deposit failed: the database did"
    for n in range(3):
        attempts = {attempt for attempt, _ in retries_logged(log, f"outage-flaky-{n}")}
        assert attempts == {1}, attempts
