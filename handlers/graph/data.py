"""The Graph domain's event data, checked at the door (handlers/contracts.py). Graph's own
items carry more fields than the fleet reads: those pass through to the handlers untouched."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

import pydantic
from pydantic import ConfigDict, Field, WithJsonSchema

from handlers.contracts import EventData

NonEmpty = Annotated[str, Field(min_length=1)]
Address = Annotated[str, Field(pattern="@")]
_ADDRESS = {"type": "string", "pattern": "@"}
Addresses = Annotated[
    list[Address],
    # The model takes one address as a list of one: say so to producers.
    WithJsonSchema({"anyOf": [_ADDRESS, {"type": "array", "items": _ADDRESS, "minItems": 1}]}),
]


class GraphItem(EventData):
    """A Graph notification item: Graph's fields are kept as sent."""

    model_config = ConfigDict(extra="allow")


class ChangeNotification(GraphItem, event_type="graph.change_notification"):
    resource: NonEmpty
    changeType: str | None = None
    resourceDataDecrypted: dict[str, Any] | None = None


class LifecycleNotification(GraphItem, event_type="graph.lifecycle_notification"):
    subscriptionId: NonEmpty
    lifecycleEvent: Literal["subscriptionRemoved", "missed", "reauthorizationRequired"]


class ResyncRequested(EventData, event_type="graph.resync_requested"):
    resource: NonEmpty
    reason: str | None = None


class ResyncDue(EventData, event_type="graph.resync_due"):
    """Beat's tick: carries nothing."""


class RenewalDue(EventData, event_type="graph.renewal_due"):
    """Beat's tick: carries nothing."""


_BASE64 = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


class Attachment(EventData):
    name: str
    contentType: str = "application/octet-stream"
    contentBytes: str = Field(json_schema_extra={"pattern": _BASE64})

    @pydantic.field_validator("contentBytes")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be base64") from None
        return value


class EmailSend(EventData, event_type="email.send"):
    """One email: `to` (and `cc`) an address or a list of them, an html or a text body."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [body], "properties": {body: {"type": "string"}}} for body in ("html", "text")
            ]
        }
    )

    to: Addresses = Field(min_length=1)
    cc: Addresses = Field(default_factory=list)
    subject: str
    html: str | None = None
    text: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)

    @pydantic.field_validator("to", "cc", mode="before")
    @classmethod
    def _one_address_is_a_list_of_one(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @pydantic.model_validator(mode="after")
    def _has_body(self) -> EmailSend:
        if self.html is None and self.text is None:
            raise ValueError("needs an html or a text body")
        return self


class GraphChange(GraphItem):
    """A change the journal records (`graph.mail.received`, `graph.user.deleted` ...)."""

    id: str | None = None
