"""Keeping subscriptions alive: lifetimes per resource and the renewal beat runs."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from handlers.envelope import Event, follow_up
from handlers.graph.ports import GraphSetup, SubscriptionManager
from handlers.ports import Clock

log = logging.getLogger("fleet.graph")

RENEW_MARGIN = 0.5
"""Renew once less than this share of the resource's maximum lifetime is left."""


def max_lifetime(resource: str, *, include_resource_data: bool = False) -> timedelta:
    """Graph's maximum subscription lifetime for a resource (v1.0 documentation, less a margin)."""
    names = [p.lower() for p in resource.strip("/").split("/")[0::2]] or [""]
    last = resource.strip("/").split("/")[-1].lower()
    if last in ("messages", "events", "contacts") or "messages" in names:
        minutes = 1440 if include_resource_data else 10080  # Outlook resources: 1 day rich, 7 days
    elif names[0] in ("users", "groups"):
        minutes = 41760  # directory resources: 29 days
    else:
        minutes = 4230  # other resources (e.g. Teams): under 3 days
    return timedelta(minutes=minutes - 15)  # a margin below the maximum for clock skew


def renew_subscriptions(
    event: Event, *, subscriptions: SubscriptionManager, clock: Clock, graph_setup: GraphSetup
) -> list[Event]:
    """Renew every stored subscription with less than half its lifetime left; re-create the
    ones Graph no longer has, and ask for a resync of what they missed. A fleet without Graph
    settings skips the run (one log line), rather than failing it into the dead-letter queue.

    Natural: a renewal sets the expiry to now plus the lifetime, so doing it twice is doing it
    once; re-creating an existing subscription meets a `409`, which adopts it.
    """
    if missing := graph_setup.missing():
        log.info("Graph is not configured (%s unset): subscription renewal skipped", ", ".join(missing))
        return []
    now = datetime.fromtimestamp(clock.now(), UTC)
    follow_ups: list[Event] = []
    for sub in subscriptions.stored():
        if sub.status != "active":
            continue
        lifetime = max_lifetime(sub.resource, include_resource_data=sub.include_resource_data)
        if sub.expires_at - now > lifetime * RENEW_MARGIN:
            continue
        if subscriptions.renew(sub.id) is not None:
            continue
        replacement = subscriptions.recreate(sub.id)
        if replacement is not None:
            resync = {"resource": sub.resource, "reason": "subscriptionRemoved"}
            follow_ups.append(
                follow_up(event, "graph.resync_requested", resync, id=f"resync/{sub.id}/renewal")
            )
    return follow_ups
