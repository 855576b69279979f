"""The producer API's publishers by target, built from `Settings` alone, one per process.

"celery": the fleet's queues (infra/producer.py). "redis-stream" and "servicebus": the
transports a bridge consumes (infra/transports/); the Service Bus SDK loads only when used.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import redis

from handlers.domains import enabled_domains
from handlers.ports import Publisher
from handlers.registry import Registry
from infra.arrivals import Arrivals
from infra.producer import Producer
from infra.settings import Settings
from infra.transports import PUBLISH_TARGETS

if TYPE_CHECKING:
    from infra.transports.servicebus_client import ServiceBusConnection


class PublishTargets:
    def __init__(self, settings: Settings, registry: Registry | None = None) -> None:
        self.settings = settings
        self.registry = registry or Registry.for_domains(enabled_domains(settings.domains))
        self._lock = threading.Lock()
        self._built: dict[str, Publisher] = {}
        self._connections: list[ServiceBusConnection] = []  # the one Service Bus client, once used
        self._pid = os.getpid()

    def publisher_for(self, target: str) -> Publisher:
        built = self._built.get(target)
        if built is not None and self._pid == os.getpid():  # every call after the first: no lock
            return built
        if target not in PUBLISH_TARGETS:
            raise ValueError(f"no publisher for {target!r}: choose from {', '.join(PUBLISH_TARGETS)}")
        with self._lock:
            if self._pid != os.getpid():  # connections do not cross a fork: the child builds its own
                self._built, self._pid = {}, os.getpid()
            if target not in self._built:
                self._built[target] = self._build(target)
            return self._built[target]

    def close(self) -> None:
        with self._lock:
            built, self._built = self._built, {}
            connections, self._connections = self._connections, []
        for connection in connections:
            if self._pid == os.getpid():
                connection.close()
        for publisher in built.values():
            close = getattr(publisher, "close", None)  # the transports' publishers close lazily
            if close is not None and self._pid == os.getpid():
                close()

    def producer(self) -> Producer:
        publisher = self.publisher_for("celery")
        assert isinstance(publisher, Producer)
        return publisher

    def _build(self, target: str) -> Publisher:
        settings = self.settings
        if target == "redis-stream":
            from infra.transports.redis_stream import RedisStreamProducer

            url = settings.redis_stream_url or settings.coordination_url
            return RedisStreamProducer(
                redis.Redis.from_url(url, socket_timeout=settings.publish_timeout),
                settings.redis_stream,
                registry=self.registry,
                max_event_bytes=settings.max_event_bytes,
                maxlen=settings.redis_stream_maxlen,
            )
        if target == "servicebus":
            from infra.transports.servicebus import ServiceBusPublisher
            from infra.transports.servicebus_client import CredentialKind, ServiceBusConnection

            secret = settings.servicebus_connection_string
            connection = ServiceBusConnection(
                connection_string=secret.get_secret_value() if secret else None,
                namespace=settings.servicebus_namespace,
                credential=CredentialKind(settings.servicebus_credential),
                client_id=settings.servicebus_client_id,
            )
            self._connections.append(connection)
            return ServiceBusPublisher(
                connection,
                settings.servicebus_queue,
                registry=self.registry,
                max_event_bytes=settings.max_event_bytes,
            )
        counts = redis.Redis.from_url(settings.coordination_url, socket_timeout=settings.publish_timeout)
        return Producer(settings, self.registry, arrivals=Arrivals(counts, settings.key_prefix))
