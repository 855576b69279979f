"""Copies of Celery's messages (infra/redis_messages.py) against the messages Celery builds itself:
the same but for their own ids and due time, and never made when Celery's messages vary in a
way a copy would not."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import signals

from handlers.envelope import Event, new_event
from infra.redis_messages import RedisMessages
from infra.redis_transport import captured_sends
from tests.support.fleets import in_process_fleet
from workers.bootstrap import Fleet

PER_MESSAGE = {("headers", "id"), ("headers", "root_id"), ("headers", "fleet_due")} | {
    ("properties", "correlation_id"),
    ("properties", "delivery_tag"),
}


@pytest.fixture
def fleet(postgres_url: str, redis_url: str) -> Iterator[Fleet]:
    fleet = in_process_fleet(redis_url, redis_url, postgres_url, batch_size=2)
    fleet.publisher.connect()  # building a first message needs kombu's channel
    yield fleet
    fleet.close()


def deposits(*ids: str) -> list[Event]:
    return [new_event("demo.deposit_recorded", {"account": "a", "amount": 1}, source="t", id=i) for i in ids]


def by_celery(fleet: Fleet, events: list[Event]) -> list[tuple[str, dict[str, Any]]]:
    with captured_sends() as sends:
        fleet.publisher.publish(events)
    return [(key, json.loads(payload)) for key, payload in sends]


def copies(messages: RedisMessages, events: list[Event]) -> list[tuple[str, dict[str, Any]]]:
    return [(key, json.loads(payload)) for key, payload in messages.build(events)]


def without_per_message(message: dict[str, Any]) -> dict[str, Any]:
    parts = {
        part: {k: v for k, v in message[part].items() if (part, k) not in PER_MESSAGE}
        for part in ("headers", "properties")
    }
    return {**message, **parts}


def body(message: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(message["body"]))


def test_copies_are_the_messages_celery_builds_but_for_their_ids_and_due_time(fleet: Fleet) -> None:
    messages = RedisMessages(fleet.publisher)
    copies(messages, deposits("warm-up"))  # learns the route's template (from other events)
    events = [*deposits("a", "b", "c"), new_event("cache.invalidate", {"tags": ["t"]}, source="t", id="i")]
    before = time.time()
    copied, built = copies(messages, events), by_celery(fleet, events)

    assert [key for key, _ in copied] == [key for key, _ in built]
    assert [without_per_message(m) for _, m in copied] == [without_per_message(m) for _, m in built]
    assert [body(m) for _, m in copied] == [body(m) for _, m in built]  # events, attempt 0, embed
    assert [len(body(m)[1]["events"]) for _, m in copied] == [2, 1, 1]
    task_ids = set()
    for _, message in copied:
        task_id = message["headers"]["id"]
        uuid.UUID(task_id)
        assert message["headers"]["root_id"] == message["properties"]["correlation_id"] == task_id
        assert before <= message["headers"]["fleet_due"] <= time.time()
        task_ids.add(task_id)
        task_ids.add(message["properties"]["delivery_tag"])
    assert len(task_ids) == 2 * len(copied), "every copy has ids of its own"


def stamp(headers: dict[str, Any], **_: Any) -> None:
    headers["trace"] = uuid.uuid4().hex  # what a tracing library does to every message


def test_a_route_whose_messages_vary_unexpectedly_is_built_by_celery(
    fleet: Fleet, caplog: pytest.LogCaptureFixture
) -> None:
    messages = RedisMessages(fleet.publisher)
    signals.before_task_publish.connect(stamp, weak=False)  # while the template is learned
    try:
        first, second = (copies(messages, deposits(i))[0][1] for i in ("a", "b"))
    finally:
        signals.before_task_publish.disconnect(stamp)
    assert first["headers"]["trace"] != second["headers"]["trace"]
    assert "messages of fleet.demo.record_deposit are built by Celery each time" in caplog.text
    assert "('headers', 'trace')" in caplog.text


def test_while_anything_listens_to_publishing_celery_builds_every_message(fleet: Fleet) -> None:
    messages = RedisMessages(fleet.publisher)
    copies(messages, deposits("warm-up"))  # a template, learned with nobody listening
    signals.before_task_publish.connect(stamp, weak=False)
    try:
        first, second = (copies(messages, deposits(i))[0][1] for i in ("a", "b"))
    finally:
        signals.before_task_publish.disconnect(stamp)
    assert first["headers"]["trace"] != second["headers"]["trace"]
    assert "trace" not in copies(messages, deposits("c"))[0][1]["headers"]


def test_an_event_that_cannot_be_sent_stops_the_build_before_any_message(fleet: Fleet) -> None:
    messages = RedisMessages(fleet.publisher)
    oversized = new_event("demo.deposit_recorded", {"note": "x" * 300_000}, source="t", id="big")
    with pytest.raises(Exception, match="over the limit"):
        messages.build([*deposits("a"), oversized])
