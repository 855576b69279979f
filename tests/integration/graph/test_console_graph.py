"""The console's "renew now" on the Graph subscriptions page: one subscription renewed in the
Graph stand-in and in the database, through the Graph adapter; operators only, CSRF-checked,
audited; the web process loads the Graph SDK only when it is first needed."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import cast

import pytest
from sqlalchemy import Engine, select

from infra.audit import SqlAuditLog
from infra.graph.schema import graph_subscriptions
from tests.integration.conftest import FleetUnderTest
from tests.integration.graph.conftest import INBOX, GraphFleet, subscribed
from tests.integration.test_console_access import client_for, console_settings, log_in
from tests.support.graph_notifications import change
from tests.support.graph_standin import GraphStandIn
from tests.support.token_standin import TokenStandIn
from workers.bootstrap import Runtime

pytestmark = [
    pytest.mark.integration,
    # The first renewal imports the SDK in this process, whose generated builders warn about their
    # own deprecated names as they are imported (as in tests/contract/test_graph_adapters.py).
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning"),
]


LAST_NOTIFICATION = re.compile(r'<td class="expires">[^<]*</td><td>([^<]*)</td><td class="note">([^<]+)</td>')


@pytest.fixture
def runtime(
    redis_url: str, postgres_url: str, engine: Engine, graph_env: dict[str, str]
) -> Iterator[Runtime]:
    """The web process's runtime, with the console's users and FLEET_GRAPH_* aimed at the stand-ins."""
    graph = {key.removeprefix("FLEET_").lower(): value for key, value in graph_env.items()}
    runtime = Runtime(console_settings(redis_url, postgres_url, **graph))
    yield runtime
    runtime.fleet().close()


@pytest.fixture
def subscriptions(engine: Engine, graph_standin: GraphStandIn, token_standin: TokenStandIn) -> dict[str, str]:
    """Two subscriptions in Graph and the database (users: 28 days left; the inbox: 6 days)."""
    no_workers = cast(FleetUnderTest, SimpleNamespace(engine=engine))  # subscribed() needs only these
    return subscribed(GraphFleet(no_workers, graph_standin, token_standin))


def stored(runtime: Runtime) -> dict[str, tuple[str, datetime]]:
    return {s.id: (s.status, s.expires_at) for s in runtime.fleet().domains.graph.stored_subscriptions.all()}


def test_an_operator_renews_one_subscription_now(
    runtime: Runtime, engine: Engine, graph_standin: GraphStandIn, subscriptions: dict[str, str]
) -> None:
    users, inbox = subscriptions["users"], subscriptions[INBOX]
    before = stored(runtime)
    client = client_for(runtime)
    token = log_in(client, "alice")
    page = client.get("/console/graph")
    assert page.text.count("Renew now") == 2
    assert f'<input type="hidden" name="id" value="{users}">' in page.text

    done = client.post("/console/graph/renew", data={"id": users, "csrf": token})
    assert done.status_code == 303
    assert graph_standin.count("PATCH", f"^/subscriptions/{users}$") == 1
    assert graph_standin.count("PATCH", "^/subscriptions/") == 1  # that one only
    after = stored(runtime)
    assert after[inbox] == before[inbox]
    assert after[users][0] == "active"
    assert after[users][1] > datetime.now(UTC) + timedelta(days=28, hours=23)  # the 29-day maximum
    in_graph = datetime.fromisoformat(graph_standin.subscriptions[users]["expirationDateTime"])
    assert abs(in_graph - after[users][1]) < timedelta(seconds=1)
    assert f"{users}: renewed: expires" in client.get("/console/graph").text

    entry = SqlAuditLog(engine).recent()[0]
    assert (entry.actor, entry.role, entry.action, entry.target) == (
        "alice",
        "operator",
        "graph.renew",
        users,
    )
    assert entry.detail.startswith("renewed: expires ")


def test_a_failed_or_impossible_renewal_says_so_and_a_vanished_one_is_marked_removed(
    runtime: Runtime, engine: Engine, graph_standin: GraphStandIn, subscriptions: dict[str, str]
) -> None:
    users, inbox = subscriptions["users"], subscriptions[INBOX]
    before = stored(runtime)
    client = client_for(runtime)
    token = log_in(client, "alice")

    graph_standin.inject("PATCH", f"^/subscriptions/{users}$", status=503)
    failed = client.post("/console/graph/renew", data={"id": users, "csrf": token})
    assert failed.status_code == 303
    assert f"{users}: not renewed: RetryableError" in client.get("/console/graph").text
    assert stored(runtime)[users] == before[users]

    del graph_standin.subscriptions[inbox]  # Graph removed it
    client.post("/console/graph/renew", data={"id": inbox, "csrf": token})
    assert stored(runtime)[inbox][0] == "removed"
    assert "gone from Graph" in client.get("/console/graph").text

    unknown = client.post("/console/graph/renew", data={"id": "no-such-id", "csrf": token})
    assert unknown.status_code == 404
    assert graph_standin.count("PATCH", "no-such-id") == 0
    assert [(e.action, e.target, e.detail.split(":")[0]) for e in SqlAuditLog(engine).recent()][:2] == [
        ("graph.renew", inbox, "gone from Graph (marked removed; the renewal job re-creates it)"),
        ("graph.renew", users, "not renewed"),
    ]


def test_renewing_needs_an_operator_and_a_csrf_token(
    runtime: Runtime, graph_standin: GraphStandIn, subscriptions: dict[str, str]
) -> None:
    users = subscriptions["users"]
    assert client_for(runtime).post("/console/graph/renew", data={"id": users}).status_code == 401
    viewer = client_for(runtime)
    token = log_in(viewer, "bob")
    assert "Renew now" not in viewer.get("/console/graph").text
    assert viewer.post("/console/graph/renew", data={"id": users, "csrf": token}).status_code == 403
    operator = client_for(runtime)
    log_in(operator, "alice")
    assert operator.post("/console/graph/renew", data={"id": users, "csrf": "wrong"}).status_code == 403
    assert graph_standin.count("PATCH", "^/subscriptions/") == 0


def test_the_page_shows_when_graph_last_notified_each_subscription(
    runtime: Runtime, engine: Engine, subscriptions: dict[str, str]
) -> None:
    users, inbox = subscriptions["users"], subscriptions[INBOX]
    with engine.connect() as connection:
        query = select(graph_subscriptions.c.client_state).where(graph_subscriptions.c.id == users)
        client_state = connection.execute(query).scalar_one()
    client = client_for(runtime)
    posted = client.post("/graph/notifications", json={"value": [change(users, client_state, "user-1")]})
    assert posted.status_code == 202, posted.text

    log_in(client, "bob")
    page = client.get("/console/graph")
    last = {sub_id: when for when, sub_id in LAST_NOTIFICATION.findall(page.text)}
    assert last[users].startswith(datetime.now(UTC).strftime("%Y-%m-%d")), page.text
    assert last[inbox] == "", "never notified"


def test_the_web_process_loads_the_graph_sdk_only_on_a_renewal() -> None:
    """A fresh interpreter (this one has the SDK loaded by other tests)."""
    code = (
        "import sys\n"
        "from infra.settings import Settings\n"
        "from workers.bootstrap import Runtime\n"
        "from workers.web import make_web_app\n"
        "make_web_app(Runtime(Settings()))\n"
        "print(sorted(m for m in ('msgraph', 'kiota_abstractions', 'azure.identity') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
