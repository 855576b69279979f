"""The event envelope: CloudEvents 1.0 in JSON structured mode, validated strictly.

`(source, id)` is the idempotency key: CloudEvents requires producers to keep it unique, so a
second event with the same pair is a redelivery of the first, never a new fact.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from handlers.errors import EventTooLarge, InvalidEvent

SPEC_VERSION = "1.0"
DEFAULT_MAX_EVENT_BYTES = 256 * 1024  # the Service Bus standard-tier message limit
TRACEPARENT_PATTERN = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
"""The form of the `traceparent` extension; handlers/trace_context.py reads it strictly."""
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
_NonEmpty = Field(min_length=1, max_length=1024)


class Event(BaseModel):
    """One CloudEvent. Known extensions are typed; other extensions must be named as the spec says."""

    model_config = ConfigDict(frozen=True, extra="allow", strict=True, str_strip_whitespace=False)

    specversion: str  # required: an object without it is not a CloudEvent
    id: str = _NonEmpty
    source: str = _NonEmpty
    type: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_.:\-]+$")
    time: datetime | None = None
    subject: str | None = None
    datacontenttype: str | None = "application/json"
    dataschema: str | None = None
    data: Any = None
    # Extensions the fleet itself reads.
    correlationid: str | None = None
    causationid: str | None = None
    traceparent: str | None = Field(default=None, pattern=TRACEPARENT_PATTERN)
    partitionkey: str | None = None

    @pydantic.field_validator("specversion")
    @classmethod
    def _only_1_0(cls, value: str) -> str:
        if value != SPEC_VERSION:
            raise ValueError("only CloudEvents specversion '1.0' is supported")
        return value

    @pydantic.field_validator("time", mode="before")
    @classmethod
    def _rfc3339(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError("must be an RFC 3339 timestamp") from None
            value = parsed
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError("must carry a UTC offset (RFC 3339)")
        return value

    @pydantic.model_validator(mode="after")
    def _extensions_well_named(self) -> Event:
        for name, value in (self.model_extra or {}).items():
            if not _EXTENSION_NAME.match(name):
                raise ValueError(
                    f"{name}: unknown attribute; extension names are 1-20 lowercase letters or digits"
                )
            if not isinstance(value, str | int | bool) or value is None:
                raise ValueError(f"{name}: an extension value must be a string, integer or boolean")
        return self

    @property
    def key(self) -> tuple[str, str]:
        """The idempotency key."""
        return (self.source, self.id)

    def to_dict(self) -> dict[str, Any]:
        """The structured-mode JSON object, without absent attributes."""
        return self.model_dump(mode="json", exclude_none=True)

    def to_json(self) -> bytes:
        """The structured-mode JSON text, without absent attributes. Encoded once per event: an
        endpoint checks the size, then the publisher or outbox sends the same bytes."""
        return self.encoded

    @property
    def encoded(self) -> bytes:
        # Kept in the instance's __dict__, which pydantic leaves out of `==` and `hash` (fields
        # only); sound because an event is frozen (its `data` is never changed in place either).
        # Not functools.cached_property: on Python 3.11 it takes a lock, a microsecond an event.
        encoded: bytes | None = self.__dict__.get("encoded")
        if encoded is None:
            encoded = self.__dict__["encoded"] = self.model_dump_json(exclude_none=True).encode()
        return encoded

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Event:
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop("encoded", None)  # the copy's fields may differ: encode it afresh
        return copy


def new_event(
    type: str,
    data: Any = None,
    *,
    source: str,
    id: str | None = None,
    subject: str | None = None,
    correlationid: str | None = None,
    causationid: str | None = None,
    **extensions: Any,
) -> Event:
    """Build a valid event, filling `id` (a UUID) and `time` (now) when not given."""
    fields: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": id or str(uuid.uuid4()),
        "source": source,
        "type": type,
        "time": datetime.now(UTC),
        "subject": subject,
        "data": data,
        "correlationid": correlationid,
        "causationid": causationid,
        **extensions,
    }
    return parse_event({k: v for k, v in fields.items() if v is not None})


def follow_up(cause: Event, type: str, data: Any = None, *, id: str, subject: str | None = None) -> Event:
    """An event caused by `cause`: same correlation id, causation id pointing at it, trace carried on.

    `id` must be derived deterministically from the cause, so that re-running the handler (a
    redelivery) produces the same follow-up and the ledger deduplicates it downstream.
    """
    return new_event(
        type,
        data,
        source=cause.source,
        id=id,
        subject=subject,
        correlationid=cause.correlationid or cause.id,
        causationid=cause.id,
        traceparent=cause.traceparent,
    )


def parse_event(raw: bytes | str | dict[str, Any], *, max_bytes: int | None = None) -> Event:
    """Validate one structured-mode CloudEvent; raise `InvalidEvent` naming the first bad field.

    Given bytes or text, the size limit is checked before anything is parsed.
    """
    if max_bytes is not None and isinstance(raw, bytes | str):
        size = len(raw.encode() if isinstance(raw, str) else raw)
        if size > max_bytes:
            raise EventTooLarge(size, max_bytes)
    try:
        if isinstance(raw, dict):
            return Event.model_validate(raw, strict=False)
        return Event.model_validate_json(raw, strict=False)
    except pydantic.ValidationError as exc:
        raise _as_invalid_event(exc) from None


def check_size(event: Event, max_bytes: int) -> bytes:
    """Encode `event` and refuse it when over `max_bytes`; returns the encoding."""
    body = event.to_json()
    if len(body) > max_bytes:
        raise EventTooLarge(len(body), max_bytes)
    return body


def _as_invalid_event(exc: pydantic.ValidationError) -> InvalidEvent:
    problems = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"])
        if error["type"] == "json_invalid":
            return InvalidEvent("", f"malformed JSON: {error['ctx'].get('error', error['msg'])}")
        if error["type"] == "model_type" or (not field and error["type"] != "value_error"):
            return InvalidEvent("", "an event must be a JSON object")
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "required attribute is missing"
        elif error["type"] == "string_too_short" and error.get("ctx", {}).get("min_length") == 1:
            message = "must not be empty"
        problems.append((field, message))
    named = [_split_model_error(field, message) for field, message in problems]
    field, message = named[0]
    others = "".join(f"; {other}: {reason}" if other else f"; {reason}" for other, reason in named[1:])
    return InvalidEvent(field, message + others)


def _split_model_error(field: str, message: str) -> tuple[str, str]:
    """Model-level errors carry their field in the message: ("", "time: bad") -> ("time", "bad")."""
    if not field and ": " in message:
        named, reason = message.split(": ", 1)
        return named, reason
    return field, message
