"""Graph handlers with in-memory fakes of their ports: follow-ups, lifecycle, delta, email."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.envelope import Event, new_event
from handlers.errors import InvalidEvent, RetryableError
from handlers.graph.changes import ResourceRef, parse_resource
from handlers.graph.email import email_key, send_email
from handlers.graph.notifications import handle_change_notification, handle_lifecycle_notification
from handlers.graph.ports import DeltaExpired, DeltaPage, OutgoingMail, Subscription, SubscriptionRequest
from handlers.graph.resync import delta_resource, resync_resource
from handlers.graph.subscriptions import max_lifetime, renew_subscriptions
from infra.builtin_domains import GRAPH
from schedules.beat import beat_schedule


class FakeGraph:
    def __init__(self, items: dict[tuple[str, ...], dict[str, Any]], pages: list[Any] | None = None) -> None:
        self.items = items
        self.pages = pages or []
        self.delta_calls: list[str | None] = []

    def get(self, kind: str, ids: Sequence[str]) -> dict[str, Any] | None:
        return self.items.get((kind, *ids))

    def delta(self, resource: str, link: str | None) -> DeltaPage:
        self.delta_calls.append(link)
        page = self.pages.pop(0)
        if isinstance(page, Exception):
            raise page
        assert isinstance(page, DeltaPage)
        return page


def notification(change: str, resource: str, **extra: Any) -> Event:
    data = {"subscriptionId": "sub-1", "changeType": change, "resource": resource, **extra}
    return new_event("graph.change_notification", data, source="msgraph", id=f"n-{change}-{resource}")


def test_resource_paths_are_read_in_both_of_graphs_spellings() -> None:
    assert parse_resource("Users/u1/Messages/m1") == ResourceRef("message", ("u1", "m1"))
    assert parse_resource("users('u1')/messages('m1')") == ResourceRef("message", ("u1", "m1"))
    assert parse_resource("Groups/g1") == ResourceRef("group", ("g1",))
    assert parse_resource("teams/t1/channels/c1") is None


def test_a_new_message_becomes_mail_received_with_its_fields() -> None:
    message = {"id": "m1", "subject": "Hi", "from": {"emailAddress": {"address": "a@x.org"}}}
    graph = FakeGraph({("message", "u1", "m1"): message})
    [event] = handle_change_notification(notification("created", "Users/u1/Messages/m1"), graph=graph)
    assert (event.type, event.id, event.source) == (
        "graph.mail.received",
        "graph.mail.received/m1",
        "msgraph",
    )
    assert event.data["subject"] == "Hi" and event.data["from"] == "a@x.org" and event.data["mailbox"] == "u1"
    assert event.causationid == "n-created-Users/u1/Messages/m1"


def test_a_user_gone_404_is_a_deletion_with_cache_invalidation_not_a_failure() -> None:
    events = handle_change_notification(notification("updated", "Users/u9"), graph=FakeGraph({}))
    assert [e.type for e in events] == ["graph.user.deleted", "cache.invalidate"]
    assert events[1].data == {"tags": ["user:u9"]}


def test_the_same_user_state_gives_the_same_event_id_and_a_new_state_a_new_one() -> None:
    graph = FakeGraph({("user", "u1"): {"id": "u1", "displayName": "Ada"}})
    first = handle_change_notification(notification("updated", "Users/u1"), graph=graph)
    again = handle_change_notification(notification("updated", "users('u1')"), graph=graph)
    graph.items[("user", "u1")] = {"id": "u1", "displayName": "Ada L."}
    changed = handle_change_notification(notification("updated", "Users/u1"), graph=graph)
    assert first[0].id == again[0].id != changed[0].id
    assert first[1].type == "cache.invalidate" and first[1].data == {"tags": ["user:u1"]}


def test_calendar_events_carry_their_summary_not_their_body() -> None:
    item = {"id": "e1", "subject": "Standup", "body": {"content": "x" * 10_000}, "start": {"dateTime": "t"}}
    graph = FakeGraph({("event", "u1", "e1"): item})
    [event] = handle_change_notification(notification("updated", "Users/u1/Events/e1"), graph=graph)
    assert event.type == "graph.event.updated" and event.data["subject"] == "Standup"
    assert "body" not in event.data and event.data["mailbox"] == "u1"


def test_rich_notifications_use_the_decrypted_payload_without_a_read() -> None:
    rich = {"id": "m2", "subject": "Rich"}
    event = notification("created", "Users/u1/Messages/m2", resourceDataDecrypted=rich)
    [mail] = handle_change_notification(event, graph=FakeGraph({}))
    assert mail.data["subject"] == "Rich"


def test_a_notification_without_a_known_resource_is_invalid() -> None:
    with pytest.raises(InvalidEvent, match=r"data\.resource"):
        handle_change_notification(notification("created", "teams/t1"), graph=FakeGraph({}))


class FakeSubscriptions:
    def __init__(self, subs: list[Subscription]) -> None:
        self.subs = {s.id: s for s in subs}
        self.calls: list[tuple[str, str]] = []
        self.graph_has: set[str] = set(self.subs)

    def create(self, request: SubscriptionRequest) -> Subscription:
        raise NotImplementedError

    def renew(self, subscription_id: str) -> Subscription | None:
        self.calls.append(("renew", subscription_id))
        return self.subs[subscription_id] if subscription_id in self.graph_has else None

    def reauthorize(self, subscription_id: str) -> None:
        self.calls.append(("reauthorize", subscription_id))

    def recreate(self, subscription_id: str) -> Subscription | None:
        self.calls.append(("recreate", subscription_id))
        return replace(self.subs[subscription_id], id="new")

    def delete(self, subscription_id: str) -> None:
        raise NotImplementedError

    def stored(self) -> list[Subscription]:
        return list(self.subs.values())

    def find(self, subscription_id: str) -> Subscription | None:
        return self.subs.get(subscription_id)


def _sub(sub_id: str, resource: str, expires_in: timedelta) -> Subscription:
    now = datetime.now(UTC)
    return Subscription(sub_id, resource, "updated", "https://hook", None, "secret", now + expires_in)


def lifecycle(kind: str) -> Event:
    data = {"subscriptionId": "s1", "lifecycleEvent": kind, "resource": "users"}
    return new_event("graph.lifecycle_notification", data, source="msgraph", id=f"l-{kind}")


def test_subscription_removed_recreates_and_asks_for_a_resync() -> None:
    subs = FakeSubscriptions([_sub("s1", "users", timedelta(days=1))])
    [resync] = handle_lifecycle_notification(lifecycle("subscriptionRemoved"), subscriptions=subs)
    assert subs.calls == [("recreate", "s1")]
    assert (resync.type, resync.data["resource"], resync.id) == (
        "graph.resync_requested",
        "users",
        "l-subscriptionRemoved/resync",
    )


def test_missed_resyncs_and_reauthorization_reauthorizes() -> None:
    subs = FakeSubscriptions([_sub("s1", "users", timedelta(days=1))])
    [resync] = handle_lifecycle_notification(lifecycle("missed"), subscriptions=subs)
    assert resync.data == {"resource": "users", "reason": "missed"} and subs.calls == []
    assert handle_lifecycle_notification(lifecycle("reauthorizationRequired"), subscriptions=subs) == []
    assert subs.calls == [("reauthorize", "s1")]


def test_renewal_touches_only_subscriptions_past_half_their_lifetime_and_recreates_lost_ones() -> None:
    fresh = _sub("fresh", "users", timedelta(days=28))
    due = _sub("due", "users", timedelta(days=3))
    lost = _sub("lost", "users/u1/messages", timedelta(hours=2))
    subs = FakeSubscriptions([fresh, due, lost])
    subs.graph_has.discard("lost")
    tick = new_event("graph.renewal_due", {}, source="fleet:schedule", id="tick-1")
    follow_ups = renew_subscriptions(tick, subscriptions=subs, clock=_Clock(), graph_setup=_Setup())
    assert subs.calls == [("renew", "due"), ("renew", "lost"), ("recreate", "lost")]
    assert [e.data["resource"] for e in follow_ups] == ["users/u1/messages"]
    assert (
        max_lifetime("users")
        > max_lifetime("users/u1/messages")
        > max_lifetime("users/u1/messages", include_resource_data=True)
    )


class _Setup:
    def __init__(self, *missing: str) -> None:
        self._missing = missing

    def missing(self) -> tuple[str, ...]:
        return self._missing


def test_without_graph_settings_beats_jobs_skip_their_run_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from handlers.graph.resync import request_resyncs

    subs = FakeSubscriptions([_sub("due", "users", timedelta(days=1))])
    unset = _Setup("FLEET_GRAPH_TENANT_ID", "FLEET_GRAPH_CLIENT_ID")
    renewal = new_event("graph.renewal_due", {}, source="fleet:schedule", id="tick-2")
    resync = new_event("graph.resync_due", {}, source="fleet:schedule", id="tick-3")
    with caplog.at_level("INFO", logger="fleet.graph"):
        assert renew_subscriptions(renewal, subscriptions=subs, clock=_Clock(), graph_setup=unset) == []
        assert request_resyncs(resync, subscriptions=subs, graph_setup=unset) == []
    assert subs.calls == []
    unconfigured = "Graph is not configured (FLEET_GRAPH_TENANT_ID, FLEET_GRAPH_CLIENT_ID unset)"
    assert [r.getMessage() for r in caplog.records] == [
        f"{unconfigured}: subscription renewal skipped",
        f"{unconfigured}: scheduled resync skipped",
    ]


class _Clock:
    def now(self) -> float:
        return datetime.now(UTC).timestamp()

    def sleep(self, seconds: float) -> None:
        return None


class FakeLinks:
    def __init__(self, links: dict[str, str | None]) -> None:
        self.links = links

    def get(self, resource: str) -> str | None:
        return self.links.get(resource)

    def put(self, resource: str, link: str | None) -> None:
        self.links[resource] = link

    def flush(self) -> None:
        return None


def test_delta_follows_next_links_to_the_delta_link_and_handles_removed_items() -> None:
    pages = [
        DeltaPage([{"id": "u1"}], next_link="next-1"),
        DeltaPage([{"id": "u2", "@removed": {"reason": "deleted"}}], delta_link="delta-2"),
    ]
    graph = FakeGraph({("user", "u1"): {"id": "u1", "displayName": "Ada"}}, pages)
    links = FakeLinks({"users": "delta-1"})
    cause = new_event("graph.resync_requested", {"resource": "users"}, source="msgraph", id="r1")
    events = resync_resource(cause, graph=graph, delta_links=links)
    assert graph.delta_calls == ["delta-1", "next-1"]
    assert links.links == {"users": "delta-2"}
    assert [e.type for e in events] == [
        "graph.user.updated",
        "cache.invalidate",
        "graph.user.deleted",
        "cache.invalidate",
    ]
    # the same change through a notification has the same id
    [via_notification, _] = handle_change_notification(notification("updated", "Users/u1"), graph=graph)
    assert via_notification.id == events[0].id


def test_an_expired_delta_link_starts_over_from_the_top() -> None:
    graph = FakeGraph({}, [DeltaExpired("410"), DeltaPage([], delta_link="fresh")])
    links = FakeLinks({"users": "stale"})
    cause = new_event("graph.resync_requested", {"resource": "users"}, source="msgraph", id="r2")
    assert resync_resource(cause, graph=graph, delta_links=links) == []
    assert graph.delta_calls == ["stale", None] and links.links["users"] == "fresh"


def test_delta_of_a_mailbox_runs_on_its_inbox() -> None:
    assert delta_resource("users/u1/messages") == "users/u1/mailFolders/inbox/messages"
    assert delta_resource("groups") == "groups"
    assert delta_resource("Users/u1/mailFolders('Inbox')/Messages") == "users/u1/mailFolders/Inbox/messages"
    assert delta_resource("users/u1/events") is None


class FakeMailer:
    """Drafts and sent items; `fail_send` makes a send happen and then raise (ambiguous)."""

    def __init__(self) -> None:
        self.drafts: dict[str, str] = {}  # draft id -> key
        self.sent: list[str] = []
        self.fail_send = 0

    def find_sent(self, key: str) -> bool:
        return key in self.sent

    def find_draft(self, key: str) -> str | None:
        return next((d for d, k in self.drafts.items() if k == key), None)

    def create_draft(self, mail: OutgoingMail, key: str) -> str:
        draft_id = f"d{len(self.drafts) + len(self.sent)}"
        self.drafts[draft_id] = key
        return draft_id

    def send_draft(self, draft_id: str) -> bool:
        key = self.drafts.pop(draft_id, None)
        if key is None:
            return False
        self.sent.append(key)
        if self.fail_send:
            self.fail_send -= 1
            raise RetryableError("504 after the send")
        return True


class FakeRecords:
    def __init__(self) -> None:
        self.drafts: dict[str, str] = {}
        self.sent: set[str] = set()

    def draft_for(self, key: str) -> str | None:
        return self.drafts.get(key) or None

    def record_draft(self, key: str, draft_id: str) -> None:
        self.drafts[key] = draft_id

    def record_sent(self, key: str) -> None:
        self.sent.add(key)


def email_event(**data: Any) -> Event:
    body = {"to": ["a@x.org"], "subject": "Hello", "text": "Hi", **data}
    return new_event("email.send", body, source="tests", id="mail-1")


def test_an_ambiguous_send_is_not_sent_again_on_retry() -> None:
    mailer, records = FakeMailer(), FakeRecords()
    mailer.fail_send = 1
    event = email_event()
    with pytest.raises(RetryableError):
        send_email(event, attempt=1, mailer=mailer, email_sends=records)
    send_email(event, attempt=2, mailer=mailer, email_sends=records)
    assert mailer.sent == [email_key(event)] and records.sent == {email_key(event)}


def test_a_draft_made_before_a_crash_is_found_by_its_key_and_sent_once() -> None:
    mailer, records = FakeMailer(), FakeRecords()
    event = email_event()
    mailer.create_draft(OutgoingMail(["a@x.org"], [], "Hello", "Hi", "text", []), email_key(event))
    send_email(event, attempt=2, mailer=mailer, email_sends=records)
    assert mailer.sent == [email_key(event)] and mailer.drafts == {}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"to": []}, "data.to"),
        ({"to": "not-an-address"}, "data.to"),
        ({"subject": 5}, "data.subject"),
        ({"attachments": [{"name": "a", "contentBytes": "%%%"}]}, "data.attachments[0].contentBytes"),
    ],
)
def test_bad_email_commands_name_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        send_email(email_event(**data), attempt=1, mailer=FakeMailer(), email_sends=FakeRecords())
    assert caught.value.field == field


def test_beat_publishes_the_renewal_and_resync_ticks() -> None:
    schedule = beat_schedule([GRAPH])
    assert schedule["graph-renew-subscriptions"]["publish"] == "graph.renewal_due"
    assert schedule["graph-delta-resync"]["publish"] == "graph.resync_due"


def test_the_expiry_metric_shows_the_earliest_active_subscription_per_resource() -> None:
    from prometheus_client import CollectorRegistry

    from infra.metrics.graph import SubscriptionExpiryCollector

    soon, later = _sub("a", "users", timedelta(days=1)), _sub("b", "users", timedelta(days=5))
    removed = replace(_sub("c", "groups", timedelta(days=1)), status="removed")
    registry = CollectorRegistry()
    registry.register(SubscriptionExpiryCollector(lambda: [later, soon, removed]))
    metric = "fleet_graph_subscription_expiry_timestamp_seconds"
    assert registry.get_sample_value(metric, {"resource": "users"}) == soon.expires_at.timestamp()
    assert registry.get_sample_value(metric, {"resource": "groups"}) is None


def test_the_scheduled_resync_asks_once_per_active_resource_with_ids_from_the_tick() -> None:
    from handlers.graph.resync import request_resyncs

    subs = [
        _sub("a", "users", timedelta(days=1)),
        _sub("b", "users", timedelta(days=2)),
        replace(_sub("c", "groups", timedelta(days=1)), status="removed"),
        _sub("d", "users/u1/messages", timedelta(days=1)),
    ]
    tick = new_event("graph.resync_due", {}, source="fleet:schedule", id="graph-delta-resync@42")
    events = request_resyncs(tick, subscriptions=FakeSubscriptions(subs), graph_setup=_Setup())
    assert [(e.type, e.data["resource"]) for e in events] == [
        ("graph.resync_requested", "users"),
        ("graph.resync_requested", "users/u1/messages"),
    ]
    assert events[0].id == "graph-delta-resync@42/users"
