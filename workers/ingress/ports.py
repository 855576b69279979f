"""What the ingress endpoints need from the rest of the fleet, as Protocols (adapters in infra/)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol

from handlers.envelope import Event


class LoopPublisher(Protocol):
    async def publish(self, events: Sequence[Event]) -> None:
        """Send durably (returns once the broker has them) or raise; never blocks the loop."""
        ...


class ApiKeyHolder(Protocol):
    @property
    def id(self) -> str: ...

    def may_publish(self, event_type: str) -> bool: ...


class ApiKeys(Protocol):
    def authenticate(self, token: str) -> ApiKeyHolder | None:
        """The live key of this token, or None; blocking."""
        ...

    def authenticate_cached(self, token: str) -> tuple[bool, ApiKeyHolder | None]:
        """`(True, the answer)` when memory decides it, else `(False, None)`; no I/O."""
        ...


class SubscriptionSecrets(Protocol):
    def cached(self, subscription_ids: Collection[str]) -> dict[str, str]:
        """clientState by subscription id, for the ids remembered and still fresh; no I/O."""
        ...

    def notified(self, subscription_ids: Collection[str]) -> None:
        """Notifications of these subscriptions arrived now; may block on I/O."""
        ...

    def client_states(self, subscription_ids: Collection[str], *, fresh: bool = False) -> dict[str, str]:
        """clientState by subscription id, for the ids that exist; `fresh` skips any cache; blocking."""
        ...


class RichNotifications(Protocol):
    """Checks validation tokens and decrypts `encryptedContent`; raises `NotificationRejected`."""

    def check_tokens(self, tokens: Sequence[object]) -> None: ...

    def decrypt(self, content: object) -> Any: ...
