"""The one place the Graph SDK client is built: credential, authority, base URL, middleware.

The SDK is asynchronous; the fleet's handlers are not. `GraphCalls` owns one event loop per
process (made on first use, after any fork) and runs each SDK call to completion on it, so the
httpx connection pool lives on one loop for the process's life.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlparse

import httpx
from azure.core.credentials import TokenCredential
from azure.identity import CertificateCredential, ClientSecretCredential, ManagedIdentityCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory  # type: ignore[import-untyped]

from infra.graph.errors import translate

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
"""Seconds a sign-in request or a Graph call may wait (FLEET_GRAPH_TIMEOUT): far below the claim
lease of the Graph routes, so a hung call ends before another worker may start, and short enough
that an unreachable Graph fails fast and opens the breaker instead of holding pool processes."""


@dataclass(frozen=True, slots=True)
class GraphConfig:
    base_url: str
    authority: str
    tenant_id: str | None
    client_id: str | None
    client_secret: str | None
    credential: str = "secret"
    certificate_path: str | None = None
    ca_bundle: str | None = None
    scopes: tuple[str, ...] = ("https://graph.microsoft.com/.default",)
    timeout: float = DEFAULT_TIMEOUT


def make_credential(config: GraphConfig) -> TokenCredential:
    """The azure-identity credential the configuration names (in-memory token cache per process)."""
    # Each token request waits at most `timeout` to connect and `timeout` for each read, and is
    # not retried here: azure-core's default retries (with a 300 s read timeout) would hold a
    # worker's pool process; the fleet's own retry and breaker decide when to sign in again.
    bounded: dict[str, Any] = {
        "connection_timeout": config.timeout,
        "read_timeout": config.timeout,
        "retry_total": 0,
    }
    common: dict[str, Any] = {"authority": config.authority, **bounded}
    if config.ca_bundle:
        common["connection_verify"] = config.ca_bundle
    if config.authority.rstrip("/") != "https://login.microsoftonline.com":
        common["disable_instance_discovery"] = True  # a private or stand-in authority is not in Entra's list
    if config.credential == "managed_identity":
        return ManagedIdentityCredential(client_id=config.client_id, **bounded)
    if not config.tenant_id or not config.client_id:
        raise ValueError("FLEET_GRAPH_TENANT_ID and FLEET_GRAPH_CLIENT_ID are required for Graph")
    if config.credential == "certificate":
        if not config.certificate_path:
            raise ValueError("FLEET_GRAPH_CERTIFICATE_PATH is required for the certificate credential")
        return CertificateCredential(config.tenant_id, config.client_id, config.certificate_path, **common)
    if not config.client_secret:
        raise ValueError("FLEET_GRAPH_CLIENT_SECRET is required for the secret credential")
    return ClientSecretCredential(config.tenant_id, config.client_id, config.client_secret, **common)


def make_client(
    config: GraphConfig, credential: TokenCredential
) -> tuple[GraphServiceClient, httpx.AsyncHTTPTransport]:
    """A `GraphServiceClient` on the configured base URL with the SDK's default middleware.

    Tokens are only attached for the base URL's host (kiota's allowed-hosts check); kiota allows
    plain http for loopback hosts only, which is how the test stand-in is reached.
    """
    host = urlparse(config.base_url).hostname or ""
    auth = AzureIdentityAuthenticationProvider(credential, scopes=list(config.scopes), allowed_hosts=[host])
    # No SDK retries at all: a 429/503 becomes RateLimited(Retry-After) and the fleet's retry
    # waits in the broker, not in a sleeping worker slot (and never re-posts a send blindly).
    no_retry = RetryHandlerOption(max_retries=0, should_retry=False)
    # Kept to be closed by us: msgraph's middleware transport does not close what it wraps.
    transport = httpx.AsyncHTTPTransport()
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(
            timeout=httpx.Timeout(config.timeout), base_url=config.base_url, transport=transport
        ),
        options={RetryHandlerOption.get_key(): no_retry},
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = config.base_url.rstrip("/")
    return GraphServiceClient(request_adapter=adapter), transport


def no_sdk_retry() -> RequestConfiguration[Any]:
    """Request options for a non-idempotent call (create, send): the SDK's retry handler would
    re-post it on 429/503/504 by default; the fleet's retry, which looks before it re-sends, owns it.
    Redundant with the client-wide option in `make_client`, on purpose: these calls must not
    depend on a default staying as it is."""
    return RequestConfiguration(options=[RetryHandlerOption(max_retries=0, should_retry=False)])


class GraphCalls:
    """Runs SDK coroutines to completion on this process's loop, errors translated."""

    def __init__(self, make: Callable[[], tuple[GraphServiceClient, httpx.AsyncHTTPTransport]]) -> None:
        self._make = make
        self._client: GraphServiceClient | None = None
        self._http: httpx.AsyncHTTPTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def client(self) -> GraphServiceClient:
        if self._client is None:
            self._client, self._http = self._make()
        return self._client

    def close(self) -> None:
        """Close the connections and the loop (a process that ends need not)."""
        if self._loop is not None:
            if self._http is not None:
                self._loop.run_until_complete(self._http.aclose())
            self._loop.close()
        self._client = self._http = self._loop = None

    def run(self, call: Callable[[GraphServiceClient], Awaitable[T]]) -> T:
        """`call(client)`, run to completion; SDK errors come out as fleet errors (errors.py)."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        try:
            return self._loop.run_until_complete(_awaited(call(self.client)))
        except Exception as exc:
            error = translate(exc)
            if error is exc:
                raise
            raise error from exc


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable
