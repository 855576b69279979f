"""Microsoft Graph change and lifecycle notifications: verify each item, enqueue one event each.

Graph waits at most 3 seconds, so nothing here calls Graph: items are checked (clientState in
constant time, rich content verified and decrypted) and enqueued; workers do the rest. An item
that fails a check is counted and dropped, never enqueued; the others go on.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from handlers.envelope import Event, check_size, new_event
from handlers.errors import EventTooLarge, InvalidEvent
from infra.ingress.graph_crypto import NotificationRejected
from infra.metrics.ingress import GRAPH_REJECTED
from workers.ingress.cloudevents_http import load_json
from workers.ingress.http import Problem, read_body
from workers.ingress.ports import RichNotifications, SubscriptionSecrets
from workers.ingress.publishing import GroupPublisher

log = logging.getLogger("fleet.ingress.graph")

GRAPH_SOURCE = "msgraph"
CHANGE_TYPE = "graph.change_notification"
LIFECYCLE_TYPE = "graph.lifecycle_notification"
LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})
MAX_VALIDATION_TOKEN_LENGTH = 1024  # Graph's tokens are a sentence and a GUID; more is not Graph
INLINE_ITEMS = 100  # up to about a millisecond of checks on the event loop; more go to a thread


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))  # made once, not per call


def notification_id(item: dict[str, Any]) -> str:
    """The same notification, redelivered, gets the same id (and the ledger makes it a no-op)."""
    return _id_of(_without_secret(item))


def _id_of(content: dict[str, Any]) -> str:
    """The id of a notification whose `content` is the item without its clientState."""
    return "gn-" + hashlib.sha256(_CANONICAL.encode(content).encode()).hexdigest()[:32]


def _without_secret(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "clientState"}


@dataclass(frozen=True)
class GraphWebhook:
    publisher: GroupPublisher
    secrets: SubscriptionSecrets
    rich: RichNotifications | None
    max_body_bytes: int
    max_event_bytes: int

    async def post(self, request: Request) -> Response:
        if "validationToken" in request.query_params:
            return handshake(request.query_params["validationToken"])
        body = await read_body(request, self.max_body_bytes)
        collection = load_json(body)
        items = collection.get("value") if isinstance(collection, dict) else None
        if not isinstance(items, list):
            raise Problem(400, "a notification collection is a JSON object with a 'value' array")
        formed = [item for item in items if _well_formed(item)]
        states = self.secrets.cached({item["subscriptionId"] for item in formed})
        doubtful = _doubtful(formed, states)
        rich = any("encryptedContent" in item for item in formed)
        if len(items) > INLINE_ITEMS or doubtful or rich:
            # A secret to read from the database, keys to fetch, RSA to do, or simply many items:
            # not on the event loop, which would stall every other request meanwhile.
            events, rejected = await run_in_threadpool(
                self._verify, collection, items, states, doubtful=doubtful, rich=rich
            )
        else:
            # The usual case: every secret known and matching; a few microseconds an item, and a
            # hop to a worker thread and back would cost more than the work (and the GIL, in p99).
            events, rejected = self._verify(collection, items, states, doubtful=doubtful, rich=rich)
        for reason in rejected:
            GRAPH_REJECTED.labels(reason).inc()
        if rejected:
            log.warning("refused %d Graph notification items: %s", len(rejected), sorted(set(rejected)))
        await self.publisher.publish(events, "graph")
        # after the answer, off the event loop: Graph waits for nothing but the enqueue
        seen = BackgroundTask(self.secrets.notified, {event.subject for event in events if event.subject})
        return JSONResponse(
            {"accepted": len(events), "rejected": len(rejected)}, status_code=202, background=seen
        )

    def _verify(
        self,
        collection: dict[str, Any],
        items: list[Any],
        states: dict[str, str],
        *,
        doubtful: set[str],
        rich: bool,
    ) -> tuple[list[Event], list[str]]:
        """Events of the good items and the reasons of the refused ones. `states`: the secrets
        cached; blocks (database, JWKS) only if some are `doubtful` (missing from the cache or not
        matching) or items are `rich`."""
        if doubtful:  # a cached secret may be stale, a new subscription not cached yet: ask again
            states = {**states, **self.secrets.client_states(doubtful, fresh=True)}
        tokens = self._check_tokens(collection.get("validationTokens")) if rich else None
        events: list[Event] = []
        rejected: list[str] = []
        for item in items:
            outcome = self._verify_item(item, states, tokens)
            if isinstance(outcome, Event):
                events.append(outcome)
            else:
                rejected.append(outcome)
        return events, rejected

    def _verify_item(self, item: Any, states: dict[str, str], tokens: str | None) -> Event | str:
        """The item's event, or why it is refused. `tokens`: the validation tokens' problem, if any."""
        refusal = _refusal(item, states)
        if refusal:
            return refusal
        data = _without_secret(item)
        event_id = _id_of(data)  # of the notification as Graph sent it, before anything is added
        if "encryptedContent" in item:
            if self.rich is None:
                return "rich_notifications_not_configured"
            if tokens:  # nothing in a rich item is trusted unless Graph's tokens prove the sender
                return tokens
            try:
                data["resourceDataDecrypted"] = self.rich.decrypt(item["encryptedContent"])
            except NotificationRejected as exc:
                log.warning("rich notification refused: %s", exc)
                return "decryption_failed"
        return self._event(item, data, event_id)

    def _event(self, item: dict[str, Any], data: dict[str, Any], event_id: str) -> Event | str:
        event_type = LIFECYCLE_TYPE if "lifecycleEvent" in item else CHANGE_TYPE
        try:
            event = new_event(
                event_type,
                data,
                source=GRAPH_SOURCE,
                id=event_id,
                subject=item["subscriptionId"],
            )
            check_size(event, self.max_event_bytes)
        except EventTooLarge:
            return "too_large"
        except InvalidEvent:
            return "invalid_event"
        return event

    def _check_tokens(self, tokens: object) -> str:
        """'' when every validation token verifies, else the reason to refuse the rich items."""
        if self.rich is None:
            return ""
        try:
            self.rich.check_tokens(tokens if isinstance(tokens, list) else [])
        except NotificationRejected as exc:
            log.warning("validation tokens refused: %s", exc)
            return "invalid_validation_tokens"
        return ""


def handshake(token: str) -> Response:
    """The subscription validation answer: the token echoed. It needs nothing but the request, so
    nothing the fleet has to build (keys, secrets, the broker) can make it fail."""
    # Starlette has URL-decoded the query already; echoed as plain text only, so a crafted
    # token can never be rendered as HTML by whoever opens the URL.
    if len(token) > MAX_VALIDATION_TOKEN_LENGTH:
        raise Problem(400, f"validationToken is longer than {MAX_VALIDATION_TOKEN_LENGTH} characters")
    return PlainTextResponse(token, headers={"X-Content-Type-Options": "nosniff"})


class RichUnavailable:
    """Stands for rich-notification checks that could not be set up (a key unreadable): rich
    items are refused with the reason, plain items are not affected."""

    def __init__(self, reason: str) -> None:
        self._reason = reason

    def check_tokens(self, tokens: Sequence[object]) -> None:
        raise NotificationRejected(f"rich notifications are unavailable: {self._reason}")

    def decrypt(self, content: object) -> Any:
        raise NotificationRejected(f"rich notifications are unavailable: {self._reason}")


def _refusal(item: Any, states: dict[str, str]) -> str | None:
    """Why a plain item is refused (its form, subscription, clientState, lifecycle event), or None."""
    if not _well_formed(item):
        return "malformed_item"
    expected = states.get(item["subscriptionId"])
    if expected is None:
        return "unknown_subscription"
    if not _matches(item["clientState"], expected):
        return "client_state_mismatch"
    if "lifecycleEvent" in item and item["lifecycleEvent"] not in LIFECYCLE_EVENTS:
        return "unknown_lifecycle_event"
    return None


def _matches(offered: str, expected: str | None) -> bool:
    """Constant time, so the comparison does not tell an attacker how much of a guess was right."""
    return expected is not None and hmac.compare_digest(offered.encode(), expected.encode())


def _doubtful(formed: list[dict[str, Any]], states: dict[str, str]) -> set[str]:
    """Subscriptions of well-formed items whose secret is not known or did not match."""
    return {
        item["subscriptionId"]
        for item in formed
        if not _matches(item["clientState"], states.get(item["subscriptionId"]))
    }


def _well_formed(item: object) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("subscriptionId"), str)
        and bool(item["subscriptionId"])
        and isinstance(item.get("clientState"), str)
    )
