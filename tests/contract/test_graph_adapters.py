"""The Graph adapters in-process: the real SDK against the stand-ins, the stores on SQLite and
PostgreSQL (subscriptions with their secrets, delta links, email sends, the change journal)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from handlers.errors import RateLimited, RetryableError
from handlers.graph.ports import SubscriptionRequest
from infra.graph.store import SqlChangeJournal, SqlDeltaLinks, SqlSendRecords, journal_entries
from infra.settings import Settings
from tests.support.graph_standin import GraphStandIn
from tests.support.token_standin import TokenStandIn, self_signed_certificate

# msgraph's generated builders define deprecated nested classes, which warn as each is first
# imported (lazily, inside calls): the SDK's own noise, not ours.
pytestmark = [
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning"),
]

with warnings.catch_warnings():  # kiota warns about its own deprecated names when imported
    warnings.simplefilter("ignore", DeprecationWarning)
    from infra.graph.errors import GraphNotFound, GraphRequestRejected
    from infra.graph.wiring import GraphAdapters

    GraphAdapters.__init__  # noqa: B018 - the SDK modules are imported on first use; import them here
    import infra.graph.mailer
    import infra.graph.reader
    import infra.graph.subscriptions  # noqa: F401


@pytest.fixture
def graph(tmp_path: Path, store_engine: Engine) -> Iterator[tuple[GraphAdapters, GraphStandIn]]:
    tokens = TokenStandIn(tmp_path, tenant="t1", client_id="c1", client_secret="s1").start()
    (tmp_path / "app").mkdir()
    app_certificate, _ = self_signed_certificate(tmp_path / "app")
    standin = GraphStandIn(lambda token: token in tokens.issued).start()
    settings = Settings(
        graph_base_url=standin.url,
        graph_authority=tokens.url,
        graph_ca_bundle=str(tokens.ca_bundle),
        graph_tenant_id="t1",
        graph_client_id="c1",
        graph_client_secret="s1",  # type: ignore[arg-type]  # pydantic makes it a SecretStr
        graph_mailbox="mb",
        graph_certificate_path=str(app_certificate),
        graph_certificate_id="app-cert-1",
    )
    adapters = GraphAdapters(settings, store_engine)
    yield adapters, standin
    adapters.close()
    standin.stop()
    tokens.stop()


def _request(resource: str, rich: bool = False) -> SubscriptionRequest:
    return SubscriptionRequest(
        resource, "created", "https://hook.example/graph", None, include_resource_data=rich
    )


def test_subscriptions_keep_graph_and_the_database_in_step(graph: tuple[GraphAdapters, GraphStandIn]) -> None:
    adapters, standin = graph
    manager = adapters.subscriptions
    rich = manager.create(_request("users/mb/messages", rich=True))
    assert rich.expires_at <= datetime.now(UTC) + timedelta(days=1)  # Graph's limit with resource data
    assert standin.subscriptions[rich.id]["clientState"] == rich.client_state
    assert standin.subscriptions[rich.id]["encryptionCertificateId"] == "app-cert-1"  # from settings
    assert manager.create(_request("users/mb/messages", rich=True)).id == rich.id  # 409: adopted
    # a 409 for a subscription whose secret we lost: it is replaced, never adopted blind
    lost = {"id": "old", "resource": "groups", "notificationUrl": "https://hook.example/graph"}
    standin.subscriptions["old"] = {**lost, "expirationDateTime": datetime.now(UTC).isoformat()}
    replaced = manager.create(_request("groups"))
    assert replaced.id != "old" and "old" not in standin.subscriptions
    renewed = manager.renew(replaced.id)
    assert renewed is not None and renewed.expires_at > datetime.now(UTC) + timedelta(days=20)
    del standin.subscriptions[replaced.id]
    assert manager.renew(replaced.id) is None
    assert manager.find(replaced.id) is not None and manager.find(replaced.id).status == "removed"  # type: ignore[union-attr]
    manager.delete(replaced.id)  # gone in Graph already: fine
    assert [s.id for s in manager.stored()] == [rich.id]


def test_graph_errors_become_the_fleets(graph: tuple[GraphAdapters, GraphStandIn]) -> None:
    adapters, standin = graph
    standin.put_user({"id": "u1"})
    reader = adapters.reader
    cases: list[tuple[dict[str, Any], type[Exception]]] = [
        ({"status": 400}, GraphRequestRejected),
        ({"status": 503}, RetryableError),
        ({"status": 429}, RateLimited),
        ({"status": 0, "after": True}, RetryableError),  # the connection dropped
    ]
    for fault, expected in cases:
        standin.inject("GET", "^/users/u1$", **fault)
        with pytest.raises(expected) as caught:
            reader.get("user", ["u1"])
        assert type(caught.value) is expected  # a 503 without Retry-After is no rate limit
    standin.inject("GET", "^/users/u1$", status=429)
    with pytest.raises(RateLimited) as throttled:
        reader.get("user", ["u1"])
    assert throttled.value.retry_after == 10.0  # no Retry-After: a default wait, still a rate limit
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    for retry_after, lowest, highest in (
        (in_a_minute, 55.0, 60.0),  # RFC 9110's other form: an HTTP-date
        ("Infinity", 10.0, 10.0),  # not a valid Retry-After: the default wait
        ("-5", 10.0, 10.0),
    ):
        standin.inject("GET", "^/users/u1$", status=429, retry_after=retry_after)
        with pytest.raises(RateLimited) as throttled:
            reader.get("user", ["u1"])
        assert lowest <= throttled.value.retry_after <= highest, retry_after
    with pytest.raises(GraphNotFound):
        adapters.calls.run(lambda client: client.users.by_user_id("nobody").get())
    assert reader.get("user", ["nobody"]) is None
    assert reader.get("user", ["u1"]) == {"@odata.type": "#microsoft.graph.user", "id": "u1"}


def test_the_stores_upsert_and_deduplicate(store_engine: Engine) -> None:
    with store_engine.begin() as connection:
        links = SqlDeltaLinks(connection)
        links.put("users", "link-1")
        links.put("users", "link-2")
        assert links.get("users") == "link-2" and links.get("groups") is None
        journal = SqlChangeJournal(connection)
        journal.add(event_id="e1", event_type="graph.user.updated", resource_id="u1", data={"a": 1})
        journal.flush()
        journal.add(event_id="e1", event_type="graph.user.updated", resource_id="u1", data={"a": 1})
        journal.flush()
    assert [entry["event_id"] for entry in journal_entries(store_engine)] == ["e1"]
    sends = SqlSendRecords(store_engine)
    assert sends.draft_for("k") is None
    sends.record_draft("k", "d1")
    sends.record_sent("k")
    assert sends.draft_for("k") == "d1"
    sends.record_draft("k", "")
    assert sends.draft_for("k") is None


def test_a_409_adopts_the_existing_subscription_from_any_page_of_the_list(
    graph: tuple[GraphAdapters, GraphStandIn],
) -> None:
    adapters, standin = graph
    manager = adapters.subscriptions
    expiry = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for n in range(5):  # others' subscriptions come first: ours is on the third page
        other = {"resource": f"groups/g{n}", "notificationUrl": "https://elsewhere.example/hook"}
        standin.subscriptions[f"other-{n}"] = {**other, "id": f"other-{n}", "expirationDateTime": expiry}
    ours = manager.create(_request("users"))
    again = manager.create(_request("users"))  # Graph answers 409
    assert again.id == ours.id and again.client_state == ours.client_state
    assert standin.count("GET", "^/subscriptions$") == 3  # three pages read
    assert len(standin.subscriptions) == 6  # nothing deleted, nothing created twice
