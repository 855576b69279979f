"""`SubscriptionManager` on the SDK and the database: Graph's subscriptions and our stored
copies (with the clientState secret the webhook checks) kept in step."""

from __future__ import annotations

import base64
import contextlib
import secrets
from dataclasses import replace
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from msgraph.generated.models.subscription import Subscription as GraphSubscription
from msgraph.graph_service_client import GraphServiceClient

from handlers.graph.ports import Subscription, SubscriptionRequest
from handlers.graph.subscriptions import max_lifetime
from infra.graph.client import GraphCalls, no_sdk_retry
from infra.graph.errors import GraphConflict, GraphNotFound
from infra.graph.store import SqlSubscriptions

MAX_LIST_PAGES = 100
"""Pages of `/subscriptions` read at most: far more subscriptions than one app may hold."""


def _now() -> datetime:
    return datetime.now(UTC)


def encryption_certificate(path: str) -> str:
    """The app's certificate as Graph takes it for rich notifications (base64 DER, no key)."""
    with open(path, "rb") as pem:
        cert = x509.load_pem_x509_certificate(pem.read())
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode()


class SdkSubscriptions:
    def __init__(
        self, calls: GraphCalls, store: SqlSubscriptions, certificate: tuple[str, str] | None = None
    ) -> None:
        self._calls = calls
        self._store = store
        self._certificate = certificate
        """(base64 certificate, its id) for subscriptions with resource data, re-created ones too."""

    def create(self, request: SubscriptionRequest) -> Subscription:
        if request.include_resource_data and not request.encryption_certificate:
            if self._certificate is None:
                raise ValueError(
                    "rich notifications need the app's certificate: set FLEET_GRAPH_CERTIFICATE_PATH "
                    "and FLEET_GRAPH_CERTIFICATE_ID"
                )
            certificate, certificate_id = self._certificate
            request = replace(
                request, encryption_certificate=certificate, encryption_certificate_id=certificate_id
            )
        lifetime = max_lifetime(request.resource, include_resource_data=request.include_resource_data)
        client_state = secrets.token_urlsafe(32)
        body = GraphSubscription(
            resource=request.resource,
            change_type=request.change_type,
            notification_url=request.notification_url,
            lifecycle_notification_url=request.lifecycle_url,
            client_state=client_state,
            expiration_date_time=_now() + lifetime,
            include_resource_data=request.include_resource_data or None,
            encryption_certificate=request.encryption_certificate,
            encryption_certificate_id=request.encryption_certificate_id,
        )

        async def post(client: GraphServiceClient) -> GraphSubscription | None:
            return await client.subscriptions.post(body, no_sdk_retry())

        try:
            created = self._calls.run(post)
        except GraphConflict:
            existing = self._adopt(request)
            if existing is None or not existing.id:
                raise
            known = existing.client_state or self._known_state(existing.id)
            if known:  # ours (an earlier attempt made it): adopt it with its secret
                created, client_state = existing, known
            else:  # ours by address, but its secret is lost and the webhook could not check it
                self.delete(existing.id)
                created = self._calls.run(post)
        if created is None or not created.id:
            raise ValueError("Graph created a subscription without an id")
        sub = Subscription(
            id=created.id,
            resource=request.resource,
            change_type=request.change_type,
            notification_url=request.notification_url,
            lifecycle_url=request.lifecycle_url,
            client_state=client_state,
            expires_at=created.expiration_date_time or body.expiration_date_time or _now(),
            include_resource_data=request.include_resource_data,
        )
        self._store.save(sub)
        return sub

    def _known_state(self, subscription_id: str | None) -> str | None:
        stored = self._store.find(subscription_id) if subscription_id else None
        return stored.client_state if stored else None

    def _adopt(self, request: SubscriptionRequest) -> GraphSubscription | None:
        """409: the subscription exists already (e.g. our earlier attempt created it). Graph lists
        subscriptions in pages; every page is read, following `@odata.nextLink`."""

        async def listed(client: GraphServiceClient) -> list[GraphSubscription]:
            found = await client.subscriptions.get()
            items = list((found.value if found else None) or [])
            for _ in range(MAX_LIST_PAGES):
                if found is None or not found.odata_next_link:
                    break
                found = await client.subscriptions.with_url(found.odata_next_link).get()
                items.extend((found.value if found else None) or [])
            return items

        for existing in self._calls.run(listed):
            same_target = existing.notification_url == request.notification_url
            if existing.resource == request.resource and same_target:
                return existing
        return None

    def renew(self, subscription_id: str) -> Subscription | None:
        stored = self._store.find(subscription_id)
        if stored is None:
            return None
        expires = _now() + max_lifetime(stored.resource, include_resource_data=stored.include_resource_data)

        async def patch(client: GraphServiceClient) -> GraphSubscription | None:
            body = GraphSubscription(expiration_date_time=expires)
            return await client.subscriptions.by_subscription_id(subscription_id).patch(body)

        try:
            renewed = self._calls.run(patch)
        except GraphNotFound:
            self._store.mark_removed(subscription_id)
            return None
        expires = (renewed.expiration_date_time if renewed else None) or expires
        self._store.set_expiry(subscription_id, expires)
        return self._store.find(subscription_id)

    def reauthorize(self, subscription_id: str) -> None:
        async def reauthorize(client: GraphServiceClient) -> None:
            await client.subscriptions.by_subscription_id(subscription_id).reauthorize.post()

        self._calls.run(reauthorize)
        self.renew(subscription_id)

    def recreate(self, subscription_id: str) -> Subscription | None:
        stored = self._store.find(subscription_id)
        if stored is None:
            return None
        self._store.mark_removed(subscription_id)
        return self.create(
            SubscriptionRequest(
                resource=stored.resource,
                change_type=stored.change_type,
                notification_url=stored.notification_url,
                lifecycle_url=stored.lifecycle_url,
                include_resource_data=stored.include_resource_data,
            )
        )

    def delete(self, subscription_id: str) -> None:
        async def delete(client: GraphServiceClient) -> None:
            await client.subscriptions.by_subscription_id(subscription_id).delete()

        with contextlib.suppress(GraphNotFound):  # gone already: what we wanted
            self._calls.run(delete)
        self._store.remove(subscription_id)

    def stored(self) -> list[Subscription]:
        return self._store.all()

    def find(self, subscription_id: str) -> Subscription | None:
        return self._store.find(subscription_id)
