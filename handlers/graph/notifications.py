"""Handlers of Graph change and lifecycle notifications (published by the webhook, source "msgraph")."""

from __future__ import annotations

from typing import Any

from handlers.envelope import Event, follow_up
from handlers.errors import InvalidEvent
from handlers.graph.changes import follow_ups_for, parse_resource
from handlers.graph.ports import GraphReader, SubscriptionManager


def _item(event: Event) -> dict[str, Any]:
    if not isinstance(event.data, dict):
        raise InvalidEvent("data", "must be a Graph notification item (an object)")
    return event.data


def handle_change_notification(event: Event, *, graph: GraphReader) -> list[Event]:
    """Fetch the changed resource (or use the decrypted rich payload) and emit its follow-ups.

    Natural: reading is free of effects and the follow-ups' ids come from the resource and its
    state (handlers/graph/changes.py), so a redelivery, or the delta resync finding the same
    change, emits the same events again and the ledger downstream makes them one effect.
    A deleted resource's 404 is an expected outcome: it becomes a `...deleted` event.
    """
    item = _item(event)
    resource = item.get("resource")
    if not isinstance(resource, str) or not resource:
        raise InvalidEvent("data.resource", "must name the changed resource")
    ref = parse_resource(resource)
    if ref is None:
        raise InvalidEvent("data.resource", f"{resource!r} is not a user, group, message or event")
    change = str(item.get("changeType", "")).lower()
    if change == "deleted":
        return follow_ups_for(event, ref, None)
    rich = item.get("resourceDataDecrypted")
    current = rich if isinstance(rich, dict) and rich.get("id") else graph.get(ref.kind, ref.ids)
    return follow_ups_for(event, ref, current)


def handle_lifecycle_notification(event: Event, *, subscriptions: SubscriptionManager) -> list[Event]:
    """Keep a subscription alive through Graph's lifecycle events.

    Claim: re-creating and reauthorizing are effects in Graph, outside the database; the claim
    keeps two workers from re-creating one subscription at once, and a retry after a lost
    completion meets a `409` on create, which adopts the existing subscription.
    `subscriptionRemoved` re-creates it and asks for a delta resync of what was missed while it
    was gone; `missed` asks for the resync only; `reauthorizationRequired` reauthorizes.
    """
    item = _item(event)
    lifecycle = str(item.get("lifecycleEvent", ""))
    subscription_id = str(item.get("subscriptionId", ""))
    if not subscription_id:
        raise InvalidEvent("data.subscriptionId", "is required")
    stored = subscriptions.find(subscription_id)
    if lifecycle == "reauthorizationRequired":
        if stored is not None:
            subscriptions.reauthorize(subscription_id)
        return []
    if lifecycle not in ("subscriptionRemoved", "missed"):
        raise InvalidEvent("data.lifecycleEvent", f"unknown lifecycle event {lifecycle!r}")
    if stored is None:  # not one of ours (or deleted by an operator): nothing to keep alive
        return []
    if lifecycle == "subscriptionRemoved":
        subscriptions.recreate(subscription_id)
    resync = {"resource": stored.resource, "reason": lifecycle}
    return [follow_up(event, "graph.resync_requested", resync, id=f"{event.id}/resync")]
