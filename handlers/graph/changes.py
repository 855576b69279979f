"""From a changed Graph resource to the follow-up events downstream handlers see.

Notification and delta resync both end here, so the same change yields the same events with
the same ids whichever path found it (the ledger then makes them one effect): ids name the
resource and, for updates, a digest of its state, never the path or the time.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from handlers.envelope import Event, new_event

GRAPH_SOURCE = "msgraph"

_KINDS = {"users": "user", "groups": "group", "messages": "message", "events": "event"}
_EVENT_FIELDS = ("id", "subject", "start", "end", "organizer", "location", "isCancelled", "webLink")
"""A calendar event's fields in its follow-up (not its body: follow-ups stay small)."""
PAREN_ID = re.compile(r"\('([^']*)'\)")


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """A Graph resource path read as its kind and the ids along it."""

    kind: str
    ids: tuple[str, ...]

    @property
    def id(self) -> str:
        return self.ids[-1]


def parse_resource(resource: str) -> ResourceRef | None:
    """`Users/{id}/Messages/{id}`, `users('{id}')/messages('{id}')`, `Groups/{id}` ... or None."""
    parts = [p for p in PAREN_ID.sub(r"/\1", resource.strip("/")).split("/") if p]
    if len(parts) % 2 or not parts:
        return None
    names, ids = [p.lower() for p in parts[0::2]], parts[1::2]
    kind = _KINDS.get(names[-1])
    if kind is None or names[0] not in ("users", "groups"):
        return None
    if kind in ("message", "event") and names[0] != "users":
        return None
    return ResourceRef(kind=kind, ids=tuple(ids))


def _state_digest(item: dict[str, Any]) -> str:
    body = {k: v for k, v in item.items() if not k.startswith("@odata")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _event(cause: Event, type: str, id: str, data: dict[str, Any], subject: str) -> Event:
    return new_event(
        type,
        data,
        source=GRAPH_SOURCE,
        id=id,
        subject=subject,
        correlationid=cause.correlationid or cause.id,
        causationid=cause.id,
        traceparent=cause.traceparent,
    )


def _cache_invalidation(cause: Event, kind: str, resource_id: str, because: str) -> Event:
    return _event(
        cause,
        "cache.invalidate",
        f"cache.invalidate/{because}",
        {"tags": [f"{kind}:{resource_id}"]},
        resource_id,
    )


def _message_fields(item: dict[str, Any], user_id: str) -> dict[str, Any]:
    sender = (item.get("from") or {}).get("emailAddress") or {}
    return {
        "mailbox": user_id,
        "id": item.get("id"),
        "subject": item.get("subject"),
        "from": sender.get("address"),
        "to": [(r.get("emailAddress") or {}).get("address") for r in item.get("toRecipients") or []],
        "receivedDateTime": item.get("receivedDateTime"),
        "internetMessageId": item.get("internetMessageId"),
        "bodyPreview": item.get("bodyPreview"),
    }


def follow_ups_for(cause: Event, ref: ResourceRef, item: dict[str, Any] | None) -> list[Event]:
    """The events for `ref` now being `item` (`None`: it is gone, deleted or 404)."""
    rid = ref.id
    if ref.kind == "message":
        if item is None:
            return [_event(cause, "graph.mail.deleted", f"graph.mail.deleted/{rid}", {"id": rid}, rid)]
        data = _message_fields(item, ref.ids[0])
        return [_event(cause, "graph.mail.received", f"graph.mail.received/{rid}", data, rid)]
    if ref.kind == "event":
        if item is None:
            return [_event(cause, "graph.event.deleted", f"graph.event.deleted/{rid}", {"id": rid}, rid)]
        version = _state_digest(item)
        data = {"mailbox": ref.ids[0], **{k: item.get(k) for k in _EVENT_FIELDS}}
        return [_event(cause, "graph.event.updated", f"graph.event.updated/{rid}/{version}", data, rid)]
    # users and groups: downstream caches keyed on them are invalidated too
    if item is None:
        gone_id = f"graph.{ref.kind}.deleted/{rid}"
        gone = _event(cause, f"graph.{ref.kind}.deleted", gone_id, {"id": rid}, rid)
        return [gone, _cache_invalidation(cause, ref.kind, rid, gone_id)]
    changed_id = f"graph.{ref.kind}.updated/{rid}/{_state_digest(item)}"
    data = {k: v for k, v in item.items() if not k.startswith("@")}
    changed = _event(cause, f"graph.{ref.kind}.updated", changed_id, data, rid)
    return [changed, _cache_invalidation(cause, ref.kind, rid, changed_id)]
