"""Ports of the Graph domain: what the handlers need from Graph and from the database.

Resources cross these ports as plain JSON-shaped dicts (Graph's own field names), so the
handlers never see an SDK model; adapters live in infra/graph/.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class DeltaPage:
    """One page of a delta query: items, and either the next page's link or the delta link."""

    items: list[dict[str, Any]]
    next_link: str | None = None
    delta_link: str | None = None


class GraphReader(Protocol):
    """Reads Graph resources; `None` means 404 (the resource is gone)."""

    def get(self, kind: str, ids: Sequence[str]) -> dict[str, Any] | None:
        """`kind` is "user", "group", "message" or "event"; `ids` the ids on its path
        (user id then message id for a message)."""
        ...

    def delta(self, resource: str, link: str | None) -> DeltaPage:
        """One delta page of `resource` ("users", "groups", "users/{id}/mailFolders/{f}/messages"),
        from `link` (a next or delta link) or from the start. Raises `DeltaExpired` on 410."""
        ...


class GraphSetup(Protocol):
    """Whether this fleet is set up to call Graph at all (a fleet may run without Graph)."""

    def missing(self) -> tuple[str, ...]:
        """The settings Graph needs that are not set; empty when Graph is configured."""
        ...


class DeltaExpired(Exception):
    """The delta link is no longer valid (410 Gone, syncStateNotFound): start over."""


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    resource: str
    change_type: str
    notification_url: str
    lifecycle_url: str | None
    client_state: str
    expires_at: datetime
    include_resource_data: bool = False
    status: str = "active"


@dataclass(frozen=True, slots=True)
class SubscriptionRequest:
    """What to subscribe to (from configuration)."""

    resource: str
    change_type: str
    notification_url: str
    lifecycle_url: str | None = None
    include_resource_data: bool = False
    encryption_certificate: str | None = None
    encryption_certificate_id: str | None = None


class SubscriptionManager(Protocol):
    """Graph subscriptions and their stored copies (with clientState), kept in step."""

    def create(self, request: SubscriptionRequest) -> Subscription: ...

    def renew(self, subscription_id: str) -> Subscription | None:
        """Extend within the resource's maximum lifetime; `None` if Graph no longer has it."""
        ...

    def reauthorize(self, subscription_id: str) -> None: ...

    def recreate(self, subscription_id: str) -> Subscription | None:
        """Create again what a removed subscription subscribed to; `None` if it was never ours."""
        ...

    def delete(self, subscription_id: str) -> None: ...

    def stored(self) -> list[Subscription]: ...

    def find(self, subscription_id: str) -> Subscription | None: ...


class DeltaLinks(Protocol):
    """Delta links per resource, in the handler's transaction."""

    def get(self, resource: str) -> str | None: ...

    def put(self, resource: str, link: str | None) -> None: ...

    def flush(self) -> None: ...


class ChangeJournal(Protocol):
    """Follow-up events recorded once each, in the handler's transaction."""

    def add(self, *, event_id: str, event_type: str, resource_id: str, data: dict[str, Any]) -> None: ...

    def flush(self) -> None: ...


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    to: list[str]
    cc: list[str]
    subject: str
    body: str
    body_type: str  # "html" or "text"
    attachments: list[dict[str, str]]  # name, contentType, contentBytes (base64)


class Mailer(Protocol):
    """Draft-then-send through Graph, keyed by an event id (see handlers/graph/email.py)."""

    def find_sent(self, key: str) -> bool:
        """Whether a message carrying `key` is in the mailbox's Sent Items."""
        ...

    def find_draft(self, key: str) -> str | None:
        """The id of a draft carrying `key`, if one exists."""
        ...

    def create_draft(self, mail: OutgoingMail, key: str) -> str: ...

    def send_draft(self, draft_id: str) -> bool:
        """Send the draft; False if it no longer exists (it was sent already, or deleted)."""
        ...


class SendRecords(Protocol):
    """What the fleet did for an email key (draft id, sent), kept across retries."""

    def draft_for(self, key: str) -> str | None: ...

    def record_draft(self, key: str, draft_id: str) -> None: ...

    def record_sent(self, key: str) -> None: ...
