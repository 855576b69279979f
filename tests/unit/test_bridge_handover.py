"""What a bridge makes of a body: a routable event, or poison with the reason it is poison."""

from __future__ import annotations

import json

from handlers.envelope import new_event
from handlers.errors import EventTooLarge, InvalidEvent, UnknownEventType
from handlers.registry import Registry
from workers.bridges.handover import Checked, HandOver, poison_letter


def _hand_over() -> HandOver:
    return HandOver(Registry(), publisher=None, max_event_bytes=2048, batch_size=500)  # type: ignore[arg-type]


def test_a_valid_event_is_checked_with_its_route_and_kept_as_received() -> None:
    body = new_event("demo.deposit_recorded", {"account": "a", "amount": 1}, source="s", id="e-1").to_json()
    checked = _hand_over().check(body)
    assert isinstance(checked, Checked)
    assert (checked.route.type, checked.key, checked.text) == (
        "demo.deposit_recorded",
        ("s", "e-1"),
        body.decode(),
    )


def test_each_kind_of_poison_says_why() -> None:
    hand_over = _hand_over()
    assert isinstance(hand_over.check(None), InvalidEvent)
    assert "malformed JSON" in str(hand_over.check(b"{nope"))
    assert isinstance(hand_over.check(json.dumps({"id": "x", "source": "s"}).encode()), InvalidEvent)
    unknown = {"specversion": "1.0", "id": "x", "source": "s", "type": "demo.nope"}
    assert isinstance(hand_over.check(json.dumps(unknown).encode()), UnknownEventType)
    assert isinstance(hand_over.check(b"{" + b" " * 3000 + b"}"), EventTooLarge)


def test_a_poison_letter_keeps_the_body_and_what_can_be_read_of_its_identity() -> None:
    body = json.dumps({"specversion": "1.0", "id": "x-1", "source": "shop", "type": "demo.nope"}).encode()
    letter = poison_letter("redis-stream", "events", "events/1-0", body, UnknownEventType("demo.nope"))
    assert (letter.handler, letter.event_id, letter.source, letter.event_type) == (
        "bridge.redis-stream",
        "x-1",
        "shop",
        "demo.nope",
    )
    assert letter.envelope == body.decode()
    unreadable = poison_letter("redis-stream", "events", "events/2-0", b"\xff\x00", InvalidEvent("", "bad"))
    assert (unreadable.event_id, unreadable.envelope[:7]) == ("events/2-0", "base64:")
