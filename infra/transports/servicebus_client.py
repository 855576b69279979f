"""The process's one Service Bus client: one credential and one `ServiceBusClient`, made on first
use and closed when the process ends, and one sender per queue kept open for every publish.

The SDK shares no AMQP connection between its senders and receivers (each is a connection of
its own), and none of them is thread-safe: a kept sender is used under a lock, and one that
failed is closed, so the next publish opens a fresh one.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from azure.servicebus import ServiceBusClient, ServiceBusSender

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential


class CredentialKind(StrEnum):
    """How a process signs in to a namespace given by name (FLEET_SERVICEBUS_CREDENTIAL)."""

    DEFAULT = "default"
    """azure-identity's chain: environment, workload identity, managed identity, Azure CLI."""
    MANAGED_IDENTITY = "managed-identity"
    WORKLOAD_IDENTITY = "workload-identity"
    ENVIRONMENT = "environment"
    AZURE_CLI = "azure-cli"


def make_credential(kind: CredentialKind, client_id: str | None) -> TokenCredential:
    """The credential of `kind`; `client_id` picks a user-assigned managed identity (or the
    workload identity's application), as AZURE_CLIENT_ID does."""
    from azure import identity  # loaded only by processes that sign in by identity

    if kind is CredentialKind.MANAGED_IDENTITY:
        return identity.ManagedIdentityCredential(client_id=client_id)
    if kind is CredentialKind.WORKLOAD_IDENTITY:
        return identity.WorkloadIdentityCredential(client_id=client_id)
    if kind is CredentialKind.ENVIRONMENT:
        return identity.EnvironmentCredential()
    if kind is CredentialKind.AZURE_CLI:
        return identity.AzureCliCredential()
    return identity.DefaultAzureCredential(managed_identity_client_id=client_id)


class ServiceBusConnection:
    """The client of one namespace for the life of the process."""

    def __init__(
        self,
        *,
        connection_string: str | None,
        namespace: str | None,
        credential: CredentialKind = CredentialKind.DEFAULT,
        client_id: str | None = None,
    ) -> None:
        if not (connection_string or namespace):
            raise ValueError(
                "Service Bus: set FLEET_SERVICEBUS_CONNECTION_STRING or FLEET_SERVICEBUS_NAMESPACE"
            )
        self._connection_string = connection_string
        self._namespace = namespace
        self._credential_kind = credential
        self._client_id = client_id
        self._lock = threading.Lock()
        self._client: ServiceBusClient | None = None
        self._credential: Any = None
        self._senders: dict[str, tuple[threading.Lock, ServiceBusSender | None]] = {}
        self._closing_registered = False

    def client(self) -> ServiceBusClient:
        with self._lock:
            if self._client is None:
                self._client = self._open()
                if not self._closing_registered:
                    atexit.register(self.close)
                    self._closing_registered = True
            return self._client

    def _open(self) -> ServiceBusClient:
        if self._connection_string:
            return ServiceBusClient.from_connection_string(self._connection_string)
        assert self._namespace is not None
        if self._credential is None:  # kept across clients: it caches its tokens
            self._credential = make_credential(self._credential_kind, self._client_id)
        return ServiceBusClient(self._namespace, self._credential)

    @contextmanager
    def in_use(self) -> Iterator[ServiceBusClient]:
        """The client, for receivers the caller opens and closes; after a failure the client is
        closed and the next use makes a new one (the bridge's reconnect)."""
        try:
            yield self.client()
        except BaseException:
            self.reset()
            raise

    @contextmanager
    def sender(self, queue: str) -> Iterator[ServiceBusSender]:
        """The queue's kept sender, for this thread alone while the block runs."""
        with self._lock:
            lock, _ = self._senders.setdefault(queue, (threading.Lock(), None))
        with lock:
            _, sender = self._senders[queue]
            if sender is None:
                sender = self.client().get_queue_sender(queue)
                sender.__enter__()
                self._senders[queue] = (lock, sender)
            try:
                yield sender
            except BaseException:
                self._senders[queue] = (lock, None)
                sender.close()
                raise

    def reset(self) -> None:
        """Close the client and its senders; the next use opens anew."""
        with self._lock:
            client, self._client = self._client, None
            senders = [sender for _, sender in self._senders.values() if sender is not None]
            self._senders = {}
        for sender in senders:
            sender.close()
        if client is not None:
            client.close()

    def close(self) -> None:
        self.reset()
        credential, self._credential = self._credential, None
        if credential is not None:
            credential.close()
