"""Subscriptions kept alive: created by the CLI, renewed by beat's tick, re-created when Graph
removes one, and resynchronised by delta when notifications were missed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from handlers.envelope import new_event
from infra.graph.schema import graph_delta_links, graph_subscriptions
from tests.integration.graph.conftest import INBOX, MAILBOX, GraphFleet, change, lifecycle, subscribed
from tests.support.processes import wait_until

pytestmark = pytest.mark.integration


def subscribe(graph_fleet: GraphFleet) -> dict[str, str]:
    """As `fleet graph subscribe` would, through the CLI (a process start: used once)."""
    graph_fleet.fleet.env["FLEET_GRAPH_SUBSCRIPTIONS"] = f"users|updated,deleted;{INBOX}|created"
    result = graph_fleet.fleet.cli("graph", "subscribe")
    assert result.returncode == 0, result.stderr
    return {row["resource"]: row["id"] for row in graph_fleet.stored_subscriptions()}


def test_the_cli_creates_subscriptions_with_secrets_and_adopts_on_409(graph_fleet: GraphFleet) -> None:
    ids = subscribe(graph_fleet)
    assert set(ids) == {"users", INBOX}
    in_graph = graph_fleet.graph.subscriptions
    assert set(in_graph) == set(ids.values())
    for row in graph_fleet.stored_subscriptions():
        assert row["client_state"] == in_graph[row["id"]]["clientState"] and len(row["client_state"]) >= 32
        assert row["status"] == "active"
    assert in_graph[ids[INBOX]]["lifecycleNotificationUrl"].endswith("/lifecycle")
    again = graph_fleet.fleet.cli("graph", "subscribe")  # Graph answers 409: the existing ones are adopted
    assert again.returncode == 0, again.stderr
    assert {row["resource"]: row["id"] for row in graph_fleet.stored_subscriptions()} == ids
    listed = graph_fleet.fleet.cli("graph", "list")
    assert ids["users"] in listed.stdout and "client" not in listed.stdout.lower()
    renewed = graph_fleet.fleet.cli("graph", "renew", ids["users"])
    assert renewed.returncode == 0 and "expires" in renewed.stdout, renewed.stderr
    assert graph_fleet.graph.count("PATCH", f"^/subscriptions/{ids['users']}$") == 1
    deleted = graph_fleet.fleet.cli("graph", "delete", ids["users"])
    assert deleted.returncode == 0, deleted.stderr
    assert ids["users"] not in graph_fleet.graph.subscriptions
    assert [row["resource"] for row in graph_fleet.stored_subscriptions()] == [INBOX]


def test_an_existing_subscription_is_adopted_without_calling_graph_and_then_kept_alive(
    graph_fleet: GraphFleet,
) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    made_elsewhere = {
        "id": "made-by-another-tool",
        "resource": "groups",
        "changeType": "updated",
        "notificationUrl": "https://fleet.example/webhooks/graph",
        "clientState": "their-secret",
        "expirationDateTime": soon.isoformat(),
    }
    graph_fleet.graph.subscriptions[made_elsewhere["id"]] = made_elsewhere
    adopt = ["graph", "adopt", "--id", "made-by-another-tool", "--client-state", "their-secret"]
    past = graph_fleet.fleet.cli(*adopt, "--resource", "groups", "--expires", "2020-01-01T00:00:00Z")
    assert past.returncode == 2 and "--expires" in past.stderr, past.stderr
    result = graph_fleet.fleet.cli(
        *adopt, "--resource", "groups", "--change-type", "updated", "--expires", soon.isoformat()
    )
    assert result.returncode == 0, result.stderr
    assert graph_fleet.graph.requests == []  # recorded, not asked of Graph
    [row] = graph_fleet.stored_subscriptions()
    assert (row["id"], row["client_state"], row["resource"], row["status"]) == (
        "made-by-another-tool",
        "their-secret",
        "groups",
        "active",
    )
    graph_fleet.publish(new_event("graph.renewal_due", {}, source="fleet:schedule", id="graph-renew@adopt"))
    wait_until(
        lambda: graph_fleet.stored_subscriptions()[0]["expires_at"] > soon + timedelta(days=3),
        60,
        0.2,
        "renewal",
    )
    assert graph_fleet.graph.count("PATCH", "^/subscriptions/made-by-another-tool$") == 1


def test_beat_renews_subscriptions_near_expiry(graph_fleet: GraphFleet) -> None:
    ids = subscribed(graph_fleet)
    soon = datetime.now(UTC) + timedelta(hours=1)
    with graph_fleet.engine.begin() as connection:
        connection.execute(update(graph_subscriptions).values(expires_at=soon))
    graph_fleet.publish(new_event("graph.renewal_due", {}, source="fleet:schedule", id="graph-renew@1"))

    def renewed() -> bool:
        rows = graph_fleet.stored_subscriptions()
        return all(row["expires_at"] > soon + timedelta(days=3) for row in rows)

    wait_until(renewed, 60, 0.2, "both renewed")
    expiry = datetime.fromisoformat(graph_fleet.graph.subscriptions[ids[INBOX]]["expirationDateTime"])
    assert expiry > datetime.now(UTC) + timedelta(days=6)  # within the 7-day limit for messages
    assert graph_fleet.graph.count("PATCH", "^/subscriptions/") == 2


def test_a_removed_subscription_is_recreated_and_resynchronised(graph_fleet: GraphFleet) -> None:
    ids = subscribed(graph_fleet)
    graph_fleet.graph.deliver(MAILBOX, {"id": "msg-a", "subject": "While nobody listened"})
    del graph_fleet.graph.subscriptions[ids[INBOX]]  # Graph dropped it
    graph_fleet.publish(lifecycle("subscriptionRemoved", ids[INBOX], INBOX))
    [entry] = graph_fleet.wait_journal(1, "graph.mail.received")
    assert entry["data"]["subject"] == "While nobody listened"
    stored = {row["id"]: row for row in graph_fleet.stored_subscriptions()}
    assert stored[ids[INBOX]]["status"] == "removed"
    [replacement] = [s for s in graph_fleet.graph.subscriptions.values() if s["resource"] == INBOX]
    assert stored[replacement["id"]]["status"] == "active"
    assert stored[replacement["id"]]["client_state"] == replacement["clientState"]
    with graph_fleet.engine.connect() as connection:
        links = dict(connection.execute(select(graph_delta_links.c.resource, graph_delta_links.c.link)).all())
    assert "$deltatoken=" in links[f"users/{MAILBOX}/mailFolders/inbox/messages"]


def test_a_missed_lifecycle_event_resyncs_and_nothing_is_processed_twice(graph_fleet: GraphFleet) -> None:
    ids = subscribed(graph_fleet)
    for number in range(3):  # three pages of delta (two items a page)
        graph_fleet.graph.put_user({"id": f"user-{number}", "displayName": f"User {number}"})
    graph_fleet.graph.put_user({"id": "user-x", "displayName": "Noticed by both"})
    graph_fleet.publish(change("updated", "Users/user-x", subscription=ids["users"]))
    graph_fleet.wait_journal(1, "graph.user.updated")
    graph_fleet.publish(lifecycle("missed", ids["users"], "users"))
    entries = graph_fleet.wait_journal(4, "graph.user.updated")
    assert sorted(e["resource_id"] for e in entries) == ["user-0", "user-1", "user-2", "user-x"]
    # then a deletion the notifications missed, found by the next resync from the stored link
    graph_fleet.graph.delete_user("user-1")
    graph_fleet.publish(lifecycle("missed", ids["users"], "users").model_copy(update={"id": "missed-2"}))
    [gone] = graph_fleet.wait_journal(1, "graph.user.deleted")
    assert gone["resource_id"] == "user-1"
    assert len(graph_fleet.journal("graph.user.updated")) == 4
    graph_fleet.publish(lifecycle("reauthorizationRequired", ids["users"], "users"))
    wait_until(
        lambda: graph_fleet.graph.count("PATCH", f"^/subscriptions/{ids['users']}$") == 1,
        60,
        0.2,
        "reauthorized, then renewed",
    )
    assert graph_fleet.graph.count("POST", f"^/subscriptions/{ids['users']}/reauthorize$") == 1
    assert graph_fleet.fleet.letters() == []


def test_an_expired_delta_link_starts_over(graph_fleet: GraphFleet) -> None:
    subscribed(graph_fleet)
    graph_fleet.graph.put_user({"id": "user-1", "displayName": "One"})
    graph_fleet.publish(new_event("graph.resync_requested", {"resource": "users"}, source="tests", id="r-1"))
    graph_fleet.wait_journal(1, "graph.user.updated")
    graph_fleet.graph.expire_delta_tokens()
    graph_fleet.graph.put_user({"id": "user-2", "displayName": "Two"})
    graph_fleet.publish(new_event("graph.resync_requested", {"resource": "users"}, source="tests", id="r-2"))
    entries = graph_fleet.wait_journal(2, "graph.user.updated")
    assert sorted(e["resource_id"] for e in entries) == ["user-1", "user-2"]
    assert graph_fleet.graph.count("GET", "/users/delta") >= 3  # the 410, then from the top
    assert graph_fleet.fleet.letters() == []
