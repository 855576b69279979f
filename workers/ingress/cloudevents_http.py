"""The CloudEvents HTTP protocol binding, receiving side: structured, binary and batch modes.

Structured (`application/cloudevents+json`): the body is one event. Batch
(`application/cloudevents-batch+json`): a JSON array of events. Binary: any other content type
with `ce-*` headers, the body being the event's `data`; the fleet's handlers take JSON data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from handlers.envelope import Event, check_size, parse_event
from handlers.errors import EventTooLarge, InvalidEvent
from workers.ingress.http import Problem

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
_TEXT_TYPES = ("text/plain",)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_json(body: bytes) -> Any:
    """Strict JSON (no NaN or Infinity); malformed input is a 400 naming where it broke."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, f"malformed JSON: {exc}") from None


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _event(raw: object, max_event_bytes: int, index: int | None = None) -> Event:
    prefix = "" if index is None else f"event {index}: "
    if not isinstance(raw, dict):
        raise Problem(400, prefix + "an event must be a JSON object", index=index)
    try:
        event = parse_event(raw)
        check_size(event, max_event_bytes)
    except EventTooLarge as exc:
        raise Problem(413, prefix + str(exc), index=index) from None
    except InvalidEvent as exc:
        raise Problem(422, prefix + str(exc), field=exc.field, index=index) from None
    return event


def parse_structured(body: bytes, max_event_bytes: int) -> list[Event]:
    return [_event(load_json(body), max_event_bytes)]


def parse_batch(body: bytes, max_event_bytes: int) -> list[Event]:
    raw = load_json(body)
    if not isinstance(raw, list):
        raise Problem(400, "a batch must be a JSON array of events")
    return [_event(item, max_event_bytes, index) for index, item in enumerate(raw)]


def parse_binary(
    headers: Mapping[str, str], media_type: str, content_type: str | None, body: bytes, max_event_bytes: int
) -> list[Event]:
    """Attributes from `ce-*` headers (percent-decoded, as the binding says), data from the body."""
    attributes: dict[str, Any] = {
        name[3:].lower(): unquote(value) for name, value in headers.items() if name.lower().startswith("ce-")
    }
    if not body:
        data = None
    elif not media_type or _is_json(media_type):  # no datacontenttype means JSON (the JSON format)
        data = load_json(body)
    elif media_type in _TEXT_TYPES:
        try:
            data = body.decode()
        except UnicodeDecodeError:
            raise Problem(400, "text/plain data is not UTF-8") from None
    else:
        raise Problem(
            415, f"binary-mode data of type {media_type or '(none)'!r} is not accepted: send JSON data"
        )
    if content_type:
        attributes["datacontenttype"] = content_type
    attributes["data"] = data
    return [_event(attributes, max_event_bytes)]


def parse_request(
    headers: Mapping[str, str], media_type: str, body: bytes, max_event_bytes: int
) -> list[Event]:
    """Events of a request in any of the three modes; raises `Problem` naming what is wrong."""
    if media_type == STRUCTURED:
        return parse_structured(body, max_event_bytes)
    if media_type == BATCH:
        return parse_batch(body, max_event_bytes)
    if "ce-specversion" in headers:
        return parse_binary(headers, media_type, headers.get("content-type"), body, max_event_bytes)
    raise Problem(
        415,
        f"content type {media_type or '(none)'!r} is not a CloudEvents mode: send {STRUCTURED}, "
        f"{BATCH}, or the event's data with ce-specversion, ce-id, ce-source and ce-type headers",
    )
