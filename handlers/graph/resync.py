"""Delta resynchronisation: what notifications missed, found by following Graph's delta links."""

from __future__ import annotations

import logging
from typing import Any

from handlers.envelope import Event, follow_up
from handlers.errors import InvalidEvent
from handlers.graph.changes import PAREN_ID, ResourceRef, follow_ups_for, parse_resource
from handlers.graph.ports import DeltaExpired, DeltaLinks, GraphReader, GraphSetup, SubscriptionManager

log = logging.getLogger("fleet.graph")

MAX_PAGES = 200
"""Pages followed in one run; a longer chain continues from its stored link in the next run."""


_NAMES = {"users": "users", "groups": "groups", "mailfolders": "mailFolders", "messages": "messages"}


def delta_resource(resource: str) -> str | None:
    """The delta query a subscription's resource is resynchronised with, in one spelling: users,
    groups, or a mail folder's messages (a mailbox's messages: its inbox); None if there is none."""
    parts = [p for p in PAREN_ID.sub(r"/\1", resource.strip("/")).split("/") if p]
    names = [_NAMES.get(p.lower()) for p in parts[0::2]]
    parts[0::2] = [name or "" for name in names]
    if parts in (["users"], ["groups"]):
        return parts[0]
    if len(parts) == 3 and parts[0] == "users" and parts[2] == "messages":
        return f"users/{parts[1]}/mailFolders/inbox/messages"
    if len(parts) == 5 and parts[0] == "users" and parts[2] == "mailFolders" and parts[4] == "messages":
        return "/".join(parts)
    return None


def _ref_of(resource: str, item: dict[str, Any]) -> ResourceRef | None:
    item_id = item.get("id")
    if not isinstance(item_id, str):
        return None
    parts = resource.split("/")
    if parts[0].lower() == "users" and len(parts) > 1:  # a mailbox's messages or events
        return parse_resource(f"users/{parts[1]}/{parts[-1]}/{item_id}")
    return parse_resource(f"{parts[0]}/{item_id}")


def resync_resource(event: Event, *, graph: GraphReader, delta_links: DeltaLinks) -> list[Event]:
    """Follow the resource's delta from its stored link to the next delta link.

    Transactional: the new delta link, the ledger row and the follow-ups (outbox) commit
    together, so a crash redoes the same pages and nothing found is lost. Each change becomes
    the event a notification would have produced (same id), so a change both paths saw is one
    effect. A `410 Gone` / `syncStateNotFound` drops the link and starts over from the top.
    Resources without a delta query (calendar events) are not resynchronised.
    """
    resource = event.data.get("resource") if isinstance(event.data, dict) else None
    if not isinstance(resource, str) or not resource:
        raise InvalidEvent("data.resource", "must name the resource to resynchronise")
    resource = delta_resource(resource)
    if resource is None:  # e.g. calendar events: no delta query on the subscribed resource
        return []
    link = delta_links.get(resource)
    events: list[Event] = []
    restarted = False
    pages = 0
    while pages < MAX_PAGES:
        try:
            page = graph.delta(resource, link)
        except DeltaExpired:
            if restarted:
                raise
            restarted, link, events = True, None, []
            continue
        pages += 1
        for item in page.items:
            ref = _ref_of(resource, item)
            if ref is None:
                continue
            if "@removed" in item:
                current: dict[str, Any] | None = None
            elif ref.kind == "message":
                current = item
            else:  # delta items of users and groups carry only what changed: read the whole state
                current = graph.get(ref.kind, ref.ids)
            events += follow_ups_for(event, ref, current)
        link = page.next_link or page.delta_link
        if page.delta_link or not page.next_link:
            break
    delta_links.put(resource, link)
    return events


def request_resyncs(
    event: Event, *, subscriptions: SubscriptionManager, graph_setup: GraphSetup
) -> list[Event]:
    """Beat's scheduled resync: one `graph.resync_requested` per subscribed resource; none, and
    one log line, when the fleet has no Graph settings.

    Natural: reads only; beat gives each slot's event one id, and the follow-ups' ids extend
    it with the resource, so a redelivered tick asks for each resync once.
    """
    if missing := graph_setup.missing():
        log.info("Graph is not configured (%s unset): scheduled resync skipped", ", ".join(missing))
        return []
    resources = sorted({s.resource for s in subscriptions.stored() if s.status == "active"})
    return [
        follow_up(
            event, "graph.resync_requested", {"resource": r, "reason": "schedule"}, id=f"{event.id}/{r}"
        )
        for r in resources
    ]
