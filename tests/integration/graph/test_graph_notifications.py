"""Change notifications through real workers and the real Graph SDK: follow-ups, 404s, tokens."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from sqlalchemy import select

from infra.schema import event_history
from tests.integration.graph.conftest import INBOX, MAILBOX, GraphFleet, change, subscribed
from tests.support.processes import free_port, wait_until

pytestmark = pytest.mark.integration


def test_a_new_message_notification_becomes_mail_received_once(graph_fleet: GraphFleet) -> None:
    message = {
        "id": "msg-1",
        "subject": "Quarterly numbers",
        "from": {"emailAddress": {"address": "cfo@contoso.example"}},
        "toRecipients": [{"emailAddress": {"address": "team@contoso.example"}}],
        "receivedDateTime": "2026-11-22T06:00:00Z",
        "bodyPreview": "See attached",
    }
    graph_fleet.graph.deliver(MAILBOX, message)
    notification = change("created", f"Users/{MAILBOX}/Messages/msg-1")
    graph_fleet.publish(notification)
    graph_fleet.publish(notification)  # the webhook may deliver an item twice
    [entry] = graph_fleet.wait_journal(1, "graph.mail.received")
    assert entry["event_id"] == "graph.mail.received/msg-1"
    assert entry["data"]["subject"] == "Quarterly numbers"
    assert entry["data"]["from"] == "cfo@contoso.example"
    assert entry["data"]["to"] == ["team@contoso.example"]
    assert entry["data"]["mailbox"] == MAILBOX
    wait_until(lambda: graph_fleet.graph.count("GET", "/messages/msg-1$") == 2, 60, what="both reads")
    assert len(graph_fleet.journal("graph.mail.received")) == 1
    assert graph_fleet.fleet.letters() == []


def test_user_changes_and_a_404_become_follow_ups_with_tokens_cached(graph_fleet: GraphFleet) -> None:
    users = [f"user-{number}" for number in range(4)]
    for user in users:
        graph_fleet.graph.put_user(
            {"id": user, "displayName": user.title(), "mail": f"{user}@contoso.example"}
        )
    graph_fleet.publish(*(change("updated", f"Users/{user}") for user in [*users, "user-gone"]))
    updated = graph_fleet.wait_journal(4, "graph.user.updated")
    assert sorted(entry["resource_id"] for entry in updated) == users
    assert updated[0]["data"]["mail"] == f"{updated[0]['resource_id']}@contoso.example"
    [gone] = graph_fleet.wait_journal(1, "graph.user.deleted")
    assert gone["resource_id"] == "user-gone"
    assert graph_fleet.graph.count("GET", "^/users/user-gone$") == 1  # a 404, taken as the deletion

    def invalidations() -> list[str]:
        query = select(event_history.c.event_id).where(
            event_history.c.event_type == "cache.invalidate", event_history.c.outcome == "handled"
        )
        with graph_fleet.engine.connect() as connection:
            return sorted(connection.execute(query).scalars())

    handled = wait_until(lambda: len(found := invalidations()) == 5 and found, 60, 0.2, "cache invalidations")
    assert "cache.invalidate/graph.user.deleted/user-gone" in handled  # the cache helper's route ran them
    assert graph_fleet.fleet.letters() == []
    # every read carried a token the stand-in issued (it answers 401 otherwise), got through
    # azure-identity from the HTTPS authority; one token request per pool process at most
    assert graph_fleet.graph.count("GET", "^/users/user-") == 5
    assert 1 <= graph_fleet.tokens.token_requests <= 2


def _post(url: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_a_notification_posted_to_the_webhook_becomes_mail_received(graph_fleet: GraphFleet) -> None:
    ids = subscribed(graph_fleet)
    port = free_port()
    graph_fleet.fleet.start("web", env={"FLEET_WEB_PORT": str(port)})
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: _healthy(f"{base}/healthz"), 120, 0.3, "the web process")
    graph_fleet.graph.deliver(MAILBOX, {"id": "msg-w", "subject": "Via the webhook"})
    [secret] = [row["client_state"] for row in graph_fleet.stored_subscriptions() if row["id"] == ids[INBOX]]
    item = {
        "subscriptionId": ids[INBOX],
        "clientState": secret,
        "changeType": "created",
        "resource": f"Users/{MAILBOX}/Messages/msg-w",
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Message",
            "@odata.id": f"Users/{MAILBOX}/Messages/msg-w",
            "id": "msg-w",
        },
        "subscriptionExpirationDateTime": "2026-11-28T00:00:00Z",
        "tenantId": "tenant-fleet",
    }
    assert _post(f"{base}/graph/notifications", {"value": [item]}) == 202
    assert _post(f"{base}/graph/notifications", {"value": [item]}) == 202  # Graph retries a slow answer
    [entry] = graph_fleet.wait_journal(1, "graph.mail.received")
    assert entry["data"]["subject"] == "Via the webhook"
    wait_until(lambda: graph_fleet.graph.count("GET", "/messages/msg-w$") == 2, 60, what="both deliveries")
    assert len(graph_fleet.journal("graph.mail.received")) == 1
