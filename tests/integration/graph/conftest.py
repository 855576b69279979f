"""A fleet wired to the Graph and token stand-ins by configuration only (FLEET_GRAPH_*)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from handlers.envelope import Event, new_event
from infra.graph.schema import graph_subscriptions
from infra.graph.store import journal_entries
from tests.integration.conftest import FleetUnderTest
from tests.support.graph_standin import GraphStandIn
from tests.support.processes import wait_until
from tests.support.token_standin import TokenStandIn

TENANT, CLIENT_ID, SECRET = "tenant-fleet", "app-fleet", "s3cret-value"
MAILBOX = "mailbox-1"
INBOX = f"users/{MAILBOX}/messages"


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """One broker is enough here: the Graph paths do not depend on it, and time is short."""
    return redis_url


@pytest.fixture
def token_standin(tmp_path: Path) -> Iterator[TokenStandIn]:
    standin = TokenStandIn(tmp_path, tenant=TENANT, client_id=CLIENT_ID, client_secret=SECRET).start()
    yield standin
    standin.stop()


@pytest.fixture
def graph_standin(token_standin: TokenStandIn) -> Iterator[GraphStandIn]:
    standin = GraphStandIn(lambda token: token in token_standin.issued).start()
    yield standin
    standin.stop()


class GraphFleet:
    """The fleet under test with its stand-ins, and what the tests look at."""

    def __init__(self, fleet: FleetUnderTest, graph: GraphStandIn, tokens: TokenStandIn) -> None:
        self.fleet, self.graph, self.tokens = fleet, graph, tokens

    def publish(self, *events: Event) -> None:
        self.fleet.fleet.publisher.publish(list(events))

    def journal(self, event_type: str | None = None) -> list[dict[str, Any]]:
        return journal_entries(self.fleet.engine, event_type)

    def wait_journal(
        self, count: int, event_type: str | None = None, timeout: float = 90.0
    ) -> list[dict[str, Any]]:
        return wait_until(  # type: ignore[no-any-return]
            lambda: (rows := self.journal(event_type)) and len(rows) >= count and rows,
            timeout,
            0.2,
            f"{count} {event_type or 'journal'} entries",
        )

    def stored_subscriptions(self) -> list[dict[str, Any]]:
        with self.fleet.engine.connect() as connection:
            return [row._asdict() for row in connection.execute(select(graph_subscriptions))]

    @property
    def engine(self) -> Engine:
        return self.fleet.engine


@pytest.fixture
def graph_env(graph_standin: GraphStandIn, token_standin: TokenStandIn) -> dict[str, str]:
    return {
        "FLEET_GRAPH_BASE_URL": graph_standin.url,
        "FLEET_GRAPH_AUTHORITY": token_standin.url,
        "FLEET_GRAPH_CA_BUNDLE": str(token_standin.ca_bundle),
        "FLEET_GRAPH_TENANT_ID": TENANT,
        "FLEET_GRAPH_CLIENT_ID": CLIENT_ID,
        "FLEET_GRAPH_CLIENT_SECRET": SECRET,
        "FLEET_GRAPH_CREDENTIAL": "secret",
        "FLEET_GRAPH_MAILBOX": MAILBOX,
        "FLEET_GRAPH_NOTIFICATION_URL": "https://fleet.example/webhooks/graph",
        "FLEET_GRAPH_LIFECYCLE_URL": "https://fleet.example/webhooks/graph/lifecycle",
    }


@pytest.fixture
def graph_fleet(
    fleet_under_test: FleetUnderTest,
    graph_env: dict[str, str],
    graph_standin: GraphStandIn,
    token_standin: TokenStandIn,
) -> GraphFleet:
    fleet_under_test.env.update(graph_env)  # the CLI and every process started from here get them
    fleet_under_test.start_worker(concurrency=2)
    return GraphFleet(fleet_under_test, graph_standin, token_standin)


def change(change_type: str, resource: str, *, subscription: str = "sub-1", **extra: Any) -> Event:
    """A change notification as the webhook publishes it (id deterministic per item)."""
    data = {
        "subscriptionId": subscription,
        "changeType": change_type,
        "resource": resource,
        "tenantId": TENANT,
        **extra,
    }
    return new_event(
        "graph.change_notification",
        data,
        source="msgraph",
        id=f"{subscription}/{change_type}/{resource}",
        subject=subscription,
    )


def lifecycle(kind: str, subscription: str, resource: str) -> Event:
    data = {"subscriptionId": subscription, "lifecycleEvent": kind, "resource": resource, "tenantId": TENANT}
    return new_event(
        "graph.lifecycle_notification",
        data,
        source="msgraph",
        id=f"{subscription}/{kind}",
        subject=subscription,
    )


def subscribed(graph_fleet: GraphFleet) -> dict[str, str]:
    """The state `subscribe` leaves (in Graph and in the database), set up directly to save time."""
    now = datetime.now(UTC)
    ids = {}
    for resource, change_type, days in (("users", "updated,deleted", 28), (INBOX, "created", 6)):
        sub_id, secret = str(uuid.uuid4()), secrets.token_urlsafe(32)
        expires = now + timedelta(days=days)
        graph_fleet.graph.subscriptions[sub_id] = {
            "id": sub_id,
            "resource": resource,
            "changeType": change_type,
            "notificationUrl": "https://fleet.example/webhooks/graph",
            "clientState": secret,
            "expirationDateTime": expires.isoformat(),
        }
        row = {
            "id": sub_id,
            "resource": resource,
            "change_type": change_type,
            "notification_url": "https://fleet.example/webhooks/graph",
            "lifecycle_url": "https://fleet.example/webhooks/graph/lifecycle",
            "client_state": secret,
            "expires_at": expires,
            "status": "active",
            "created_at": now,
            "updated_at": now,
        }
        with graph_fleet.engine.begin() as connection:
            connection.execute(insert(graph_subscriptions).values(**row))
        ids[resource] = sub_id
    return ids
