"""Each event type's data model, as the doors and the engine check it: no I/O."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.contracts import EventData, check_event, parse_data, schema_uri
from handlers.envelope import new_event
from handlers.errors import InvalidEvent
from handlers.registry import ROUTES, Registry


def test_every_built_in_route_has_a_model_that_names_its_type() -> None:
    for route in ROUTES.values():
        assert route.data is not None, route.type
        named = getattr(route.data, "event_type", route.type)
        assert named == route.type, f"{route.data.__name__} names {named}, routed as {route.type}"


@pytest.mark.parametrize(
    ("event_type", "data", "field", "says"),
    [
        ("demo.deposit_recorded", {"account": "a", "amount": -5}, "data.amount", "greater than 0"),
        ("demo.deposit_recorded", {"account": "a", "amount": "5"}, "data.amount", "valid integer"),
        ("demo.deposit_recorded", None, "data", "must be an object"),
        ("demo.crash_requested", {"crash": False}, "data", "needs account and amount"),
        ("cache.invalidate", {"keys": ["k"], "tag": ["t"]}, "data.tag", "Extra inputs"),
        ("cache.invalidate", {}, "data", "names no keys"),
        ("orders.order_placed", {"order_id": "o", "customer_id": "c", "card": "x", "items": [{}]},
         "data.items.0.product_id", "required field is missing"),
        ("graph.lifecycle_notification", {"subscriptionId": "s", "lifecycleEvent": "x"},
         "data.lifecycleEvent", "Input should be"),
        ("email.send", {"to": "nobody", "subject": "s", "text": "t"}, "data.to.0", "match pattern"),
        ("email.send", {"to": "a@b", "subject": "s", "text": "t",
                        "attachments": [{"name": "n", "contentBytes": "%%"}]},
         "data.attachments.0.contentBytes", "must be base64"),
    ],
)  # fmt: skip
def test_data_breaking_its_model_is_an_invalid_event_naming_the_field(
    event_type: str, data: Any, field: str, says: str
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_data(Registry().route_for(event_type), data)
    assert caught.value.field == field
    assert says in caught.value.reason


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("demo.deposit_recorded", {"account": "a", "amount": 5, "email": "x@y", "note": "kept out"}),
        ("demo.crash_requested", {}),
        ("cache.invalidate", {"tags": ["customer:1:orders"]}),
        ("orders.order_placed", {"order_id": "o", "customer_id": "c", "card": "x",
                                 "items": [{"product_id": "p", "quantity": 2}]}),
        ("graph.change_notification", {"resource": "users/1", "clientState": "kept", "tenantId": "t"}),
        ("graph.renewal_due", {}),
        ("graph.user.updated", {"id": "u-1", "displayName": "A"}),
        ("email.send", {"to": ["a@b"], "subject": "s", "html": "<p>"}),
    ],
)  # fmt: skip
def test_data_the_handlers_take_passes_its_model(event_type: str, data: Any) -> None:
    route = Registry().route_for(event_type)
    check_event(route, new_event(event_type, data, source="t"))


def test_graph_items_keep_the_fields_the_fleet_does_not_read() -> None:
    parsed = parse_data(Registry().route_for("graph.change_notification"), {"resource": "r", "tenantId": "t"})
    assert parsed is not None and parsed.model_extra == {"tenantId": "t"}


def test_dataschema_naming_another_version_of_the_type_is_refused_and_the_current_one_passes() -> None:
    route = Registry().route_for("demo.deposit_recorded")
    assert schema_uri(route) == "urn:fleet:schema:demo.deposit_recorded:1"
    data = {"account": "a", "amount": 5}
    check_event(route, new_event(route.type, data, source="t", dataschema=schema_uri(route)))
    check_event(route, new_event(route.type, data, source="t", dataschema="https://example.com/theirs"))
    for other in ("urn:fleet:schema:demo.deposit_recorded:2", "urn:fleet:schema:cache.invalidate:1"):
        with pytest.raises(InvalidEvent, match="not a schema this fleet takes") as caught:
            check_event(route, new_event(route.type, data, source="t", dataschema=other))
        assert caught.value.field == "dataschema"


def test_a_model_class_names_its_event_type() -> None:
    class Shipped(EventData, event_type="shop.shipped"):
        parcel: str

    assert Shipped(parcel="p").event_type == "shop.shipped"
