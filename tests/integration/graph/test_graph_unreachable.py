"""A Graph that is not configured, or does not answer, does not drag down the rest of the fleet.

Graph is black-holed by a TCP port that accepts and never answers (tests/support/black_hole.py),
in front of the Graph stand-in or in place of the token endpoint.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine, select

from handlers.envelope import new_event
from handlers.errors import RetryableError
from infra.graph.wiring import GraphAdapters
from infra.schema import event_history
from infra.settings import Settings
from tests.integration.conftest import FleetUnderTest
from tests.integration.graph.conftest import TENANT, GraphFleet, change
from tests.support.black_hole import BlackHole
from tests.support.graph_standin import GraphStandIn
from tests.support.processes import wait_until
from tests.support.token_standin import TokenStandIn

pytestmark = pytest.mark.integration

DEPOSITS, GRAPH_EVENTS = 300, 15


def test_without_graph_settings_beats_graph_jobs_run_and_leave_no_dead_letter(
    fleet_under_test: FleetUnderTest,
) -> None:
    worker = fleet_under_test.start_worker(concurrency=2)
    for job in ("graph-renew-subscriptions", "graph-delta-resync"):
        ran = fleet_under_test.cli("schedules", "run", job)
        assert ran.returncode == 0, ran.stderr
    worker.wait_for_log("subscription renewal skipped", timeout=60)
    worker.wait_for_log("scheduled resync skipped", timeout=60)

    def handled() -> list[str]:
        query = select(event_history.c.event_type).where(event_history.c.outcome == "handled")
        with fleet_under_test.engine.connect() as connection:
            return sorted(row[0] for row in connection.execute(query))

    wait_until(lambda: handled() == ["graph.renewal_due", "graph.resync_due"], 30, 0.2, "both jobs handled")
    assert fleet_under_test.letters() == []
    assert worker.log().count("Graph is not configured (FLEET_GRAPH_TENANT_ID, FLEET_GRAPH_CLIENT_ID") == 2


def test_a_black_holed_graph_leaves_deposits_flowing_and_its_events_take_effect_once_it_answers(
    fleet_under_test: FleetUnderTest,
    graph_env: dict[str, str],
    graph_standin: GraphStandIn,
    token_standin: TokenStandIn,
) -> None:
    hole = BlackHole(graph_standin.url).start()
    try:
        # Production settings but a shorter timeout (the breaker opens sooner): no
        # FLEET_DOWNSTREAM_SLOTS, so a pool of 2 keeps one process free of Graph.
        unreachable = {"FLEET_GRAPH_BASE_URL": hole.url, "FLEET_GRAPH_TIMEOUT": "5"}
        fleet_under_test.env.update({**graph_env, **unreachable})
        worker = fleet_under_test.start_worker(concurrency=2)
        fleet_under_test.start("beat")  # releases the waits of an open breaker (over FLEET_ETA_MAX)
        graph = GraphFleet(fleet_under_test, graph_standin, token_standin)
        users = [f"user-{number}" for number in range(GRAPH_EVENTS)]
        for user in users:
            graph_standin.put_user({"id": user, "displayName": user.title()})
        for user in users:  # one message each, as the webhook mostly sends them
            graph.publish(change("updated", f"Users/{user}"))
        worker.wait_for_log("Graph request failed in transit", timeout=60)

        began = time.monotonic()
        publisher = fleet_under_test.fleet.publisher
        for _ in range(DEPOSITS // 10):
            publisher.publish(
                [
                    new_event("demo.deposit_recorded", {"account": "a-1", "amount": 1}, source="shop")
                    for _ in range(10)
                ]
            )
        wait_until(lambda: sum(fleet_under_test.deposits().values()) == DEPOSITS, 60, 0.1, "deposits")
        seconds = time.monotonic() - began
        print(f"{DEPOSITS} deposits in {seconds:.1f}s while {GRAPH_EVENTS} Graph events were pending")
        assert seconds < 30  # a pool held by Graph takes 5 s a turn (30 s before) until the breaker opens

        worker.wait_for_log("circuit opened for fleet.graph.handle_change_notification", timeout=60)
        assert hole.most_waiting == 1  # Graph held one of the pool's two processes at a time, never both
        assert graph.journal("graph.user.updated") == []
        assert fleet_under_test.letters() == []

        hole.restore()
        restored = time.monotonic()
        entries = graph.wait_journal(GRAPH_EVENTS, "graph.user.updated", timeout=90)
        print(f"{GRAPH_EVENTS} Graph events took effect {time.monotonic() - restored:.1f}s after it answered")
        assert sorted(entry["resource_id"] for entry in entries) == sorted(users)
        assert fleet_under_test.letters() == []
    finally:
        hole.stop()


# msgraph's generated builders warn of their own deprecated classes when first used
@pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning")
def test_a_sign_in_against_a_black_holed_token_endpoint_gives_up_within_the_timeout(engine: Engine) -> None:
    hole = BlackHole().start()
    settings = Settings(
        graph_base_url="http://127.0.0.1:9/v1.0",
        graph_authority=f"https://127.0.0.1:{hole.port}",
        graph_tenant_id=TENANT,
        graph_client_id="app",
        graph_client_secret="secret",  # type: ignore[arg-type]  # pydantic makes it a SecretStr
        graph_timeout=1.0,
    )
    adapters = GraphAdapters(settings, engine)
    outcome: list[BaseException | float] = []

    def read() -> None:
        began = time.monotonic()
        try:
            adapters.reader.get("user", ["user-1"])
        except BaseException as exc:  # handed to the test's thread
            outcome.append(exc)
        outcome.append(time.monotonic() - began)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(30)  # azure-core's own defaults would wait 300 s per read, and retry
    try:
        assert len(outcome) == 2, "the sign-in did not give up within 30 s"
        error, seconds = outcome
        assert isinstance(error, RetryableError) and "sign-in failed" in str(error)
        assert isinstance(seconds, float) and seconds < 5  # one token request, bounded by 1 s
    finally:
        adapters.close()
        hole.stop()
