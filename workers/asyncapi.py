"""The AsyncAPI 3.0 document of the fleet, from its route table and settings: served at
/asyncapi.json by `fleet web`, printed by `fleet events schema`.

Servers are the configured brokers and transports (credentials left out); channels are the
fleet's queues, each carrying the messages of its routes, and the transports the bridges read;
one `receive` operation per route (its Celery task), and one per bridge. Every message is a
CloudEvent in JSON structured mode whose payload schema is its type's envelope with the type's
data schema (workers/event_schemas.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from handlers.contracts import schema_uri
from handlers.routing import Route
from infra.settings import Settings
from workers.event_schemas import REF, event_name, typed_events

CONTENT_TYPE = "application/cloudevents+json"


def _server(url: str, description: str) -> dict[str, Any]:
    parts = urlsplit(url)
    protocol = {"rediss": "redis", "pyamqp": "amqp"}.get(parts.scheme, parts.scheme)
    host = parts.hostname or "localhost"
    server: dict[str, Any] = {
        "host": f"{host}:{parts.port}" if parts.port else host,
        "protocol": protocol,
        "description": description,
    }
    if parts.path not in ("", "/"):
        server["pathname"] = parts.path
    return server


def _servers(settings: Settings) -> dict[str, Any]:
    servers = {"broker": _server(settings.broker_url, "The broker holding the fleet's queues")}
    stream_url = settings.redis_stream_url or settings.coordination_url
    servers["redis-stream"] = _server(stream_url, f"The Redis stream {settings.redis_stream} a bridge reads")
    if settings.servicebus_namespace or settings.servicebus_connection_string is not None:
        namespace = settings.servicebus_namespace or "the namespace of FLEET_SERVICEBUS_CONNECTION_STRING"
        servers["servicebus"] = {
            "host": namespace,
            "protocol": "amqp",
            "protocolVersion": "1.0",
            "description": f"The Azure Service Bus queue {settings.servicebus_queue} a bridge reads",
        }
    return servers


def _message(route: Route) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": route.type,
        "title": route.type,
        "contentType": CONTENT_TYPE,
        "payload": {"$ref": REF + event_name(route)},
    }
    if route.data is not None:
        message["summary"] = (route.data.__doc__ or route.type).strip().splitlines()[0]
        message["description"] = (
            f"data: {route.data.__name__}, version {route.data_version} ({schema_uri(route)})"
        )
    return message


def asyncapi_document(routes: Sequence[Route], settings: Settings) -> dict[str, Any]:
    """The document for these routes, as deployed with these settings."""
    _, schemas = typed_events(routes)
    messages = {event_name(route): _message(route) for route in routes}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for queue in sorted({route.queue for route in routes}):
        on_queue = [route for route in routes if route.queue == queue]
        channels[queue] = {
            "address": settings.queue_name(queue),
            "title": f"queue {queue}",
            "messages": {
                event_name(route): {"$ref": f"#/components/messages/{event_name(route)}"}
                for route in on_queue
            },
            "servers": [{"$ref": "#/servers/broker"}],
        }
    for route in routes:
        operations[route.task] = {
            "action": "receive",
            "title": f"{route.type}: {route.idempotency}, {route.retry.max_attempts} attempts at most",
            "channel": {"$ref": f"#/channels/{route.queue}"},
            "messages": [{"$ref": f"#/channels/{route.queue}/messages/{event_name(route)}"}],
        }
    every_message = {name: {"$ref": f"#/components/messages/{name}"} for name in messages}
    servers = _servers(settings)
    transports = {"redis-stream": settings.redis_stream, "servicebus": settings.servicebus_queue}
    for transport, address in transports.items():
        if transport not in servers:
            continue
        channels[transport] = {
            "address": address,
            "title": f"{transport} read by `fleet bridge {transport}`",
            "messages": every_message,
            "servers": [{"$ref": f"#/servers/{transport}"}],
        }
        operations[f"bridge.{transport}"] = {
            "action": "receive",
            "title": "bridged to the fleet's queues; an event its route refuses is dead-lettered",
            "channel": {"$ref": f"#/channels/{transport}"},
            "messages": [{"$ref": f"#/channels/{transport}/messages/{name}"} for name in messages],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "fleet",
            "version": "1",
            "description": "Domain events (CloudEvents 1.0) the fleet handles: each type's queue, "
            "handler and data schema. dataschema names the schema: urn:fleet:schema:<type>:<version>.",
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": servers,
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }
