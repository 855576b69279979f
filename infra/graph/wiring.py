"""The Graph adapters of one process, built from settings by the composition root.

Nothing here does I/O: the credential and SDK client are made on the first Graph call, so a
fleet without Graph settings starts; beat's Graph jobs skip their runs (`SettingsGraphSetup`), and
only Graph events published on purpose fail (retried, then dead-lettered).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Engine

from handlers.graph.ports import SubscriptionRequest
from infra.graph.store import SqlSendRecords, SqlSubscriptions
from infra.settings import Settings

if TYPE_CHECKING:  # the SDK is imported on first use: it is large, and most processes never call Graph
    from infra.graph.client import GraphCalls, GraphConfig
    from infra.graph.mailer import SdkMailer
    from infra.graph.reader import SdkGraphReader
    from infra.graph.subscriptions import SdkSubscriptions


def config_from(settings: Settings) -> GraphConfig:
    from infra.graph.client import GraphConfig

    secret = settings.graph_client_secret
    return GraphConfig(
        base_url=settings.graph_base_url,
        authority=settings.graph_authority,
        tenant_id=settings.graph_tenant_id,
        client_id=settings.graph_client_id,
        client_secret=secret.get_secret_value() if secret else None,
        credential=settings.graph_credential,
        certificate_path=settings.graph_certificate_path,
        ca_bundle=settings.graph_ca_bundle,
        scopes=tuple(s for s in settings.graph_scopes.split() if s),
        timeout=settings.graph_timeout,
    )


@dataclass(frozen=True)
class SettingsGraphSetup:
    """The `GraphSetup` port: what the configured credential still needs to sign in."""

    settings: Settings

    def missing(self) -> tuple[str, ...]:
        s = self.settings
        if s.graph_credential == "managed_identity":
            return ()  # the platform's identity signs in; a client id is optional
        needed: dict[str, object] = {
            "FLEET_GRAPH_TENANT_ID": s.graph_tenant_id,
            "FLEET_GRAPH_CLIENT_ID": s.graph_client_id,
        }
        if s.graph_credential == "certificate":
            needed["FLEET_GRAPH_CERTIFICATE_PATH"] = s.graph_certificate_path
        else:
            needed["FLEET_GRAPH_CLIENT_SECRET"] = s.graph_client_secret
        return tuple(name for name, value in needed.items() if not value)


def subscription_requests(settings: Settings) -> list[SubscriptionRequest]:
    """The subscriptions configuration asks for (`resource|changeTypes;...`)."""
    requests = []
    for entry in (e.strip() for e in settings.graph_subscriptions.split(";")):
        if not entry:
            continue
        resource, _, change_type = entry.partition("|")
        if not change_type or not settings.graph_notification_url:
            raise ValueError(
                f"FLEET_GRAPH_SUBSCRIPTIONS entry {entry!r}: needs `resource|changeTypes` "
                "and FLEET_GRAPH_NOTIFICATION_URL"
            )
        requests.append(
            SubscriptionRequest(
                resource=resource.strip(),
                change_type=change_type.strip(),
                notification_url=settings.graph_notification_url,
                lifecycle_url=settings.graph_lifecycle_url,
            )
        )
    return requests


class _Lazy:
    """Stands for an SDK adapter until its first method call, when it is built."""

    def __init__(self, build: Callable[[], object]) -> None:
        self._build = build

    @cached_property
    def _target(self) -> object:
        return self._build()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


@dataclass
class GraphAdapters:
    settings: Settings
    engine: Engine
    secrets_changed: Callable[[Collection[str]], object] = lambda _: None
    """Told the ids of subscriptions whose clientState changed or went (the webhook's copies)."""
    _closing: list[Callable[[], object]] = field(default_factory=list)

    @cached_property
    def setup(self) -> SettingsGraphSetup:
        return SettingsGraphSetup(self.settings)

    @cached_property
    def calls(self) -> GraphCalls:
        from infra.graph.client import GraphCalls, make_client, make_credential

        config = config_from(self.settings)
        credential = make_credential(config)
        self._closing.append(getattr(credential, "close", lambda: None))
        return GraphCalls(lambda: make_client(config, credential))

    def close(self) -> None:
        if "calls" in self.__dict__:  # built: there are connections to close
            self.calls.close()
        for close in self._closing:
            close()

    @cached_property
    def reader(self) -> SdkGraphReader:
        return cast("SdkGraphReader", _Lazy(self._reader))

    def _reader(self) -> SdkGraphReader:
        from infra.graph.reader import SdkGraphReader

        return SdkGraphReader(self.calls)

    @cached_property
    def mailer(self) -> SdkMailer:
        return cast("SdkMailer", _Lazy(self._mailer))

    def _mailer(self) -> SdkMailer:
        from infra.graph.mailer import SdkMailer

        return SdkMailer(self.calls, self.settings.graph_mailbox)

    @cached_property
    def send_records(self) -> SqlSendRecords:
        return SqlSendRecords(self.engine)

    @cached_property
    def stored_subscriptions(self) -> SqlSubscriptions:
        """The database's copies alone (no SDK): for metrics and the webhook."""
        return SqlSubscriptions(self.engine, self.secrets_changed)

    @cached_property
    def subscriptions(self) -> SdkSubscriptions:
        return cast("SdkSubscriptions", _Lazy(self._subscriptions))

    def _subscriptions(self) -> SdkSubscriptions:
        from infra.graph.subscriptions import SdkSubscriptions, encryption_certificate

        path, certificate_id = self.settings.graph_certificate_path, self.settings.graph_certificate_id
        certificate = (encryption_certificate(path), certificate_id) if path and certificate_id else None
        return SdkSubscriptions(self.calls, self.stored_subscriptions, certificate)
