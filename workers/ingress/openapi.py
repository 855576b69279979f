"""The published OpenAPI document of the ingress endpoints (served at /openapi.json)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from handlers.routing import Route
from workers.event_schemas import typed_events

_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_EVENT = {"$ref": "#/components/schemas/CloudEvent"}
_COLLECTION = {"$ref": "#/components/schemas/NotificationCollection"}


def _content(media_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {media_type: {"schema": schema}}


_NAME = r"^[A-Za-z0-9_.:\-]+$"


def _problems(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "Malformed JSON or not the expected shape",
        401: "Missing, unknown or revoked credentials, or a bad signature",
        403: "The API key may not publish this event type",
        404: "No such webhook source",
        413: "Body or event over the size limit (checked while reading)",
        415: "Not a CloudEvents content mode",
        422: "An attribute breaks the CloudEvents schema, the data its type's schema "
        "(field: data.<path>), or no handler takes the type",
        503: "The broker is unreachable: nothing was accepted; retry after Retry-After seconds",
    }
    return {
        str(status): {
            "description": reasons[status],
            "content": _content("application/problem+json", _PROBLEM),
        }
        for status in statuses
    }


def _accepted(schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": "Durably on the broker", "content": _content("application/json", schema)}


def openapi_document(routes: Sequence[Route]) -> dict[str, Any]:
    """The document; `routes` are the fleet's (the registry's). The body of `POST /events` is a
    `oneOf` over the event types, each with its data's schema (workers/event_schemas.py)."""
    event, components = typed_events(routes)
    ids = {
        "type": "object",
        "required": ["accepted"],
        "properties": {"accepted": {"type": "array", "items": {"type": "string"}}},
    }
    graph_post = {
        "parameters": [
            {
                "name": "validationToken",
                "in": "query",
                "required": False,
                "description": "Graph's subscription handshake: echoed back as text/plain",
                "schema": {"type": "string", "maxLength": 1024},
            }
        ],
        # Required but for the handshake (which has a validationToken and no body): OpenAPI cannot
        # say "one or the other".
        "requestBody": {
            "required": True,
            "content": _content("application/json", _COLLECTION),
        },
        "responses": {
            "200": {"description": "Handshake", "content": _content("text/plain", {"type": "string"})},
            "202": _accepted(
                {
                    "type": "object",
                    "properties": {"accepted": {"type": "integer"}, "rejected": {"type": "integer"}},
                }
            ),
            **_problems(400, 413, 503),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fleet ingress",
            "version": "1",
            "description": "Events in over HTTP: CloudEvents (structured, binary with ce-* headers, batch), "
            "Microsoft Graph change notifications, Standard Webhooks. 202 means durably on the broker.",
        },
        "paths": {
            "/events": {
                "post": {
                    "summary": "Publish CloudEvents",
                    "security": [{"apiKey": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/cloudevents+json": {"schema": _EVENT},
                            "application/cloudevents-batch+json": {
                                "schema": {
                                    "type": "array",
                                    "items": _EVENT,
                                }
                            },
                        },
                    },
                    "responses": {"202": _accepted(ids), **_problems(400, 401, 403, 413, 415, 422, 503)},
                }
            },
            "/graph/notifications": {"post": {"summary": "Graph change notifications", **graph_post}},
            "/graph/lifecycle": {"post": {"summary": "Graph lifecycle notifications", **graph_post}},
            "/webhooks/{source}": {
                "post": {
                    "summary": "A Standard Webhooks delivery from a configured source",
                    "parameters": [
                        {
                            "name": "source",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "pattern": _NAME},
                        },
                        *(
                            {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
                            for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
                        ),
                    ],
                    "requestBody": {"required": True, "content": _content("application/json", {})},
                    "responses": {"202": _accepted(ids), **_problems(400, 401, 404, 413, 422, 503)},
                }
            },
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                **components,
                "CloudEvent": event,
                "NotificationCollection": {
                    "type": "object",
                    "required": ["value"],
                    "properties": {
                        "value": {"type": "array", "items": {"type": "object"}},
                        "validationTokens": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "Problem": {
                    "type": "object",
                    "required": ["status", "detail"],
                    "properties": {
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "field": {"type": "string"},
                        "index": {"type": "integer"},
                    },
                },
            },
        },
    }
