from __future__ import annotations

import json

import pytest

from handlers.envelope import check_size, follow_up, new_event, parse_event
from handlers.errors import EventTooLarge, InvalidEvent

VALID = {
    "specversion": "1.0",
    "id": "e-1",
    "source": "/shop",
    "type": "demo.deposit_recorded",
    "data": {"a": 1},
}


def test_a_structured_cloudevent_round_trips_through_json() -> None:
    event = parse_event(
        json.dumps({**VALID, "time": "2026-01-02T03:04:05Z", "correlationid": "c-1"}).encode()
    )
    again = parse_event(event.to_json())
    assert again == event
    assert event.key == ("/shop", "e-1")
    assert event.to_dict()["time"] == "2026-01-02T03:04:05Z"


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        (b"{", "", "malformed JSON"),
        (b"[1]", "", "must be a JSON object"),
        ({k: v for k, v in VALID.items() if k != "id"}, "id", "required attribute is missing"),
        ({**VALID, "source": ""}, "source", "must not be empty"),
        ({**VALID, "type": "has spaces"}, "type", "pattern"),
        ({k: v for k, v in VALID.items() if k != "specversion"}, "specversion", "required attribute"),
        ({**VALID, "specversion": "0.3"}, "specversion", "only CloudEvents specversion '1.0'"),
        ({**VALID, "time": "yesterday"}, "time", "RFC 3339"),
        ({**VALID, "time": "2026-01-02T03:04:05"}, "time", "UTC offset"),
        ({**VALID, "Bad-Name": 1}, "Bad-Name", "extension names"),
        ({**VALID, "tenant": {"nested": True}}, "tenant", "extension value"),
        ({**VALID, "traceparent": "nope"}, "traceparent", "pattern"),
    ],
)
def test_invalid_events_are_refused_with_the_offending_field_named(
    raw: object, field: str, reason: str
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(raw)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_well_named_extensions_are_kept() -> None:
    event = parse_event({**VALID, "tenant": "acme", "priority": 3})
    assert event.to_dict()["tenant"] == "acme"


def test_the_size_limit_is_checked_before_parsing_and_on_encoding() -> None:
    big = json.dumps({**VALID, "data": "x" * 2000}).encode()
    with pytest.raises(EventTooLarge, match="over the limit of 1024 bytes"):
        parse_event(big, max_bytes=1024)
    with pytest.raises(EventTooLarge):
        check_size(parse_event(big), 1024)
    assert check_size(parse_event(VALID), 1024) == parse_event(VALID).to_json()


def test_an_event_is_encoded_once_and_its_copies_afresh() -> None:
    event = parse_event(VALID)
    assert event.to_json() is event.to_json()  # the size check and the publisher share one encoding
    assert event == parse_event(VALID)  # the kept encoding is not part of equality
    assert parse_event(VALID) == event
    changed = event.model_copy(update={"id": "e-2"})
    assert json.loads(changed.to_json())["id"] == "e-2"
    assert json.loads(event.to_json())["id"] == "e-1"


def test_new_events_get_an_id_and_a_time() -> None:
    first, second = new_event("demo.x", source="s"), new_event("demo.x", source="s")
    assert first.to_dict()["specversion"] == "1.0"
    assert first.id != second.id
    assert first.time is not None


def test_follow_ups_carry_correlation_causation_and_trace() -> None:
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    cause = new_event("demo.a", source="s", id="cause-1", traceparent=trace)
    effect = follow_up(cause, "demo.b", {"k": 1}, id="cause-1/b")
    assert (effect.correlationid, effect.causationid, effect.traceparent) == ("cause-1", "cause-1", trace)
    assert follow_up(effect, "demo.c", id="x").correlationid == "cause-1"
