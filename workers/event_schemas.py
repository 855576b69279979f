"""JSON Schemas of the fleet's events, from the route table, for the published documents
(OpenAPI at /openapi.json, AsyncAPI at /asyncapi.json): the CloudEvents envelope, and one
envelope per event type whose `type` is that type and whose `data` is its route's model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic.json_schema import models_json_schema

from handlers.contracts import schema_uri
from handlers.envelope import TRACEPARENT_PATTERN
from handlers.routing import Route

REF = "#/components/schemas/"


def envelope(
    event_type: dict[str, Any], data: dict[str, Any], dataschema: dict[str, Any], *, data_required: bool
) -> dict[str, Any]:
    """A CloudEvent (JSON structured mode) with the given `type`, `data` and `dataschema`."""
    return {
        "type": "object",
        "required": ["specversion", "id", "source", "type", *(["data"] if data_required else [])],
        "properties": {
            "specversion": {"type": "string", "enum": ["1.0"]},
            "id": {"type": "string", "minLength": 1, "maxLength": 1024},
            "source": {"type": "string", "minLength": 1, "maxLength": 1024},
            "type": event_type,
            "time": {"type": "string", "format": "date-time"},
            "subject": {"type": "string"},
            "datacontenttype": {"type": "string"},
            "dataschema": dataschema,
            "data": data,
            "correlationid": {"type": "string"},
            "causationid": {"type": "string"},
            "partitionkey": {"type": "string"},
            "traceparent": {"type": "string", "pattern": TRACEPARENT_PATTERN},
        },
        # Extensions: lowercase letters and digits (the CloudEvents naming rule, which every
        # attribute above follows too), simple values.
        "propertyNames": {"pattern": "^[a-z0-9]{1,20}$"},
        "additionalProperties": {"type": ["string", "integer", "boolean"]},
    }


def event_name(route: Route) -> str:
    """The component naming the route's events: its type (letters, digits, `.`, `_`, `-`)."""
    return route.type.replace(":", "-")


def typed_events(routes: Sequence[Route]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A `oneOf` over the routes' events, discriminated by `type`, and the components it refers
    to (each type's envelope, and its data model's schema under the model's name)."""
    modelled = sorted((route for route in routes if route.data is not None), key=lambda route: route.type)
    keys, definitions = models_json_schema(
        [(route.data, "validation") for route in modelled if route.data is not None],
        ref_template=REF + "{model}",
    )
    components: dict[str, Any] = dict(definitions.get("$defs", {}))
    mapping: dict[str, str] = {}
    for route in routes:
        if route.data is not None:
            data = keys[(route.data, "validation")]
            uri = schema_uri(route)
            dataschema = {"type": "string", "examples": [uri], "description": f"{uri}, or absent"}
        else:  # a route without a model takes any data
            data, dataschema = {}, {"type": "string"}
        name = event_name(route)
        kind = {"type": "string", "const": route.type}
        components[name] = envelope(kind, data, dataschema, data_required=route.data is not None)
        mapping[route.type] = REF + name
    one_of = {
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "type", "mapping": mapping},
    }
    return one_of, components
