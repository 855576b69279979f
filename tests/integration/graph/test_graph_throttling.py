"""Throttling: a burst that draws 429s (and 503s) with Retry-After waits as told and completes,
and does not open the route's circuit breaker (throttling is Graph answering, not failing)."""

from __future__ import annotations

import pytest

from infra import keys
from tests.integration.graph.conftest import GraphFleet, change

pytestmark = pytest.mark.integration


def test_a_throttled_burst_waits_for_retry_after_and_completes_without_dead_letters(
    graph_fleet: GraphFleet,
) -> None:
    users = [f"user-{number}" for number in range(12)]
    for user in users:
        graph_fleet.graph.put_user({"id": user, "displayName": user.title()})
    graph_fleet.graph.inject("GET", "^/users/user-", status=429, times=5, retry_after=1)
    graph_fleet.graph.inject("GET", "^/users/user-", status=503, times=2, retry_after=2)
    graph_fleet.publish(*(change("updated", f"Users/{user}") for user in users))
    entries = graph_fleet.wait_journal(12, "graph.user.updated", timeout=90)
    assert sorted(entry["resource_id"] for entry in entries) == sorted(users)
    statuses = [
        status for method, path, status in graph_fleet.graph.requests if path.startswith("/users/user-")
    ]
    assert statuses.count(429) == 5 and statuses.count(503) == 2 and statuses.count(200) == 12
    assert graph_fleet.fleet.letters() == []
    # the SDK did not retry on its own: each throttled read came back through the fleet's retry,
    # which waited exactly what Graph asked (the worker logs the wait it chose)
    log = "".join(process.log() for process in graph_fleet.fleet.processes)
    assert log.count("(RateLimited: Graph 429: throttled); retrying in 1.00s") == 5
    assert log.count("(RateLimited: Graph 503: throttled); retrying in 2.00s") == 2
    # 7 throttled of 19 calls, 7 of the first 12: enough to open the breaker were they failures
    assert "circuit opened" not in log
    assert not graph_fleet.fleet.redis.hexists(
        keys.breaker(graph_fleet.fleet.env["FLEET_KEY_PREFIX"], "fleet.graph.handle_change_notification"),
        "open_until",
    )
