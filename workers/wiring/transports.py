"""The transports other systems publish on (Redis streams, Azure Service Bus): their producers,
dead-letter queues and the bridges that hand their events to the fleet's queues."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from redis import Redis
from sqlalchemy import Engine

from handlers.registry import Registry
from infra.dead_letters import SqlDeadLetters
from infra.publisher import CeleryPublisher
from infra.settings import Settings
from infra.transports.effects import SqlEffects
from infra.transports.redis_stream import RedisStreamGroup, RedisStreamProducer
from workers.bridges.handover import HandOver
from workers.bridges.redis_stream import RedisStreamBridge

if TYPE_CHECKING:  # the Service Bus SDK loads only in the processes that use it (about 0.5 s)
    from infra.transports.servicebus import ServiceBusDeadLetters, ServiceBusPublisher
    from infra.transports.servicebus_client import ServiceBusConnection
    from workers.bridges.servicebus import ServiceBusBridge


@dataclass
class Transports:
    settings: Settings
    registry: Registry
    engine: Engine
    redis: Redis
    publisher: CeleryPublisher
    dead_letters: SqlDeadLetters

    @cached_property
    def stream_redis(self) -> Redis:
        url = self.settings.redis_stream_url
        return self.settings.redis_access().client(url) if url else self.redis

    @cached_property
    def redis_stream_producer(self) -> RedisStreamProducer:
        return RedisStreamProducer(
            self.stream_redis,
            self.settings.redis_stream,
            registry=self.registry,
            max_event_bytes=self.settings.max_event_bytes,
            maxlen=self.settings.redis_stream_maxlen,
        )

    def redis_stream_bridge(self, consumer: str) -> RedisStreamBridge:
        """A bridge process's loop, as consumer `consumer` of the stream's group."""
        group = RedisStreamGroup(
            self.stream_redis,
            self.settings.redis_stream,
            self.settings.redis_stream_group,
            consumer,
            claim_idle_ms=int(self.settings.redis_stream_claim_idle * 1000),
            count=self.settings.batch_size,
        )
        return RedisStreamBridge(group, self.hand_over, self.dead_letters)

    @cached_property
    def servicebus(self) -> ServiceBusConnection:
        """The process's one Service Bus client, for its publisher, bridge and console."""
        from infra.transports.servicebus_client import CredentialKind, ServiceBusConnection

        secret = self.settings.servicebus_connection_string
        return ServiceBusConnection(
            connection_string=secret.get_secret_value() if secret else None,
            namespace=self.settings.servicebus_namespace,
            credential=CredentialKind(self.settings.servicebus_credential),
            client_id=self.settings.servicebus_client_id,
        )

    def close(self) -> None:
        if "servicebus" in self.__dict__:
            self.servicebus.close()

    @cached_property
    def servicebus_publisher(self) -> ServiceBusPublisher:
        from infra.transports.servicebus import ServiceBusPublisher

        return ServiceBusPublisher(
            self.servicebus,
            self.settings.servicebus_queue,
            registry=self.registry,
            max_event_bytes=self.settings.max_event_bytes,
        )

    @cached_property
    def servicebus_dead_letters(self) -> ServiceBusDeadLetters:
        from infra.transports.servicebus import ServiceBusDeadLetters

        return ServiceBusDeadLetters(self.servicebus, self.settings.servicebus_queue)

    def servicebus_bridge(self) -> ServiceBusBridge:
        from infra.transports.servicebus_receiver import QueueReceiving
        from workers.bridges.servicebus import ServiceBusBridge

        receiving = QueueReceiving(
            self.servicebus,
            self.settings.servicebus_queue,
            sessions=self.settings.servicebus_sessions,
            lock_renewal=self.settings.servicebus_lock_renewal,
            max_wait=1.0,
        )
        return ServiceBusBridge(
            receiving,
            self.hand_over,
            sessions=self.settings.servicebus_sessions,
            effects=SqlEffects(self.engine),
            batch=self.settings.batch_size,
        )

    @cached_property
    def hand_over(self) -> HandOver:
        return HandOver(
            self.registry,
            self.publisher,
            max_event_bytes=self.settings.max_event_bytes,
            batch_size=self.settings.batch_size,
        )
