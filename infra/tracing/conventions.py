"""The attribute names of OpenTelemetry's messaging and CloudEvents semantic conventions."""

from __future__ import annotations

SYSTEM = "messaging.system"
OPERATION_TYPE = "messaging.operation.type"
OPERATION_NAME = "messaging.operation.name"
DESTINATION = "messaging.destination.name"
MESSAGE_ID = "messaging.message.id"
BATCH_COUNT = "messaging.batch.message_count"
EVENT_ID = "cloudevents.event_id"
EVENT_TYPE = "cloudevents.event_type"
EVENT_SOURCE = "cloudevents.event_source"
ATTEMPT = "fleet.attempt"
"""The event's attempt number (1-based, counted across retries and worker deaths)."""

REDIS = "redis"
RABBITMQ = "rabbitmq"
SERVICEBUS = "servicebus"
