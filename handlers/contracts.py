"""Event types as contracts: each route's data model, its versioned schema name, and the check
every door (fleet.publish, POST /events, the CLI, the bridges) runs before anything is enqueued.

A route's `data` is a pydantic model; `data_version` is the version of its released schema
(`<domain>/schemas/<type>.v<n>.json`, handlers/compatibility.py). The CloudEvents `dataschema`
attribute names it as `urn:fleet:schema:<type>:<version>`; an event naming another version of a
fleet schema is refused, since the fleet cannot honour a contract it does not have.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, TypeVar

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from handlers.envelope import Event
from handlers.errors import InvalidEvent
from handlers.routing import Route

SCHEMA_PREFIX = "urn:fleet:schema:"
_Model = TypeVar("_Model", bound=BaseModel)


def _integral(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


Integer = Annotated[int, BeforeValidator(_integral)]
"""An integer as JSON Schema counts them: 5 and 5.0 alike; never true, 5.5 or "5"."""
PositiveInteger = Annotated[int, Field(gt=0), BeforeValidator(_integral)]


class EventData(BaseModel):
    """The data of one event type. The class names its type, so a producer publishes an instance
    alone: `fleet.publish(DepositRecorded(account="a-1", amount=5), source="shop")`.

        class DepositRecorded(EventData, event_type="demo.deposit_recorded"): ...
    """

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    event_type: ClassVar[str]

    def __init_subclass__(cls, *, event_type: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if event_type is not None:
            cls.event_type = event_type


def schema_uri(route: Route) -> str | None:
    """The `dataschema` of the route's events: `urn:fleet:schema:<type>:<version>`."""
    if route.data is None:
        return None
    return f"{SCHEMA_PREFIX}{route.type}:{route.data_version}"


def parse_data(route: Route, data: Any) -> BaseModel | None:
    """`data` as the route's model (None for a route without one); `InvalidEvent` names the first
    field that breaks it, as `data.<path>`."""
    return None if route.data is None else parse_model(route.data, data)


def parse_model(model: type[_Model], data: Any) -> _Model:
    """`data` as `model`; `InvalidEvent` names the first field that breaks it, as `data.<path>`."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise _as_invalid_data(exc) from None


def check_event(route: Route, event: Event) -> None:
    """Refuse an event its route's contract does not take: a `dataschema` naming another version
    of a fleet schema, or `data` that breaks the route's model. Routes without a model take all."""
    if route.data is None:
        return
    if event.dataschema is not None and event.dataschema.startswith(SCHEMA_PREFIX):
        expected = schema_uri(route)
        if event.dataschema != expected:
            raise InvalidEvent(
                "dataschema", f"{event.dataschema!r} is not a schema this fleet takes for {route.type}: "
                f"send {expected!r}"
            )  # fmt: skip
    parse_data(route, event.data)


def _as_invalid_data(exc: pydantic.ValidationError) -> InvalidEvent:
    errors = exc.errors(include_url=False)
    first = errors[0]
    field = ".".join(["data", *(str(part) for part in first["loc"])])
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "required field is missing"
    elif first["type"] == "model_type":
        message = "must be an object"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return InvalidEvent(field, message + more)
