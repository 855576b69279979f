"""The producer's messages (infra/producer_app.py) against those the workers' app built for
producers until now: for every route, the same task, queue, headers, properties and body but for
what each message sets for itself."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from handlers.envelope import Event, new_event
from handlers.registry import Registry, Route
from infra.producer import Producer
from infra.redis_messages import FILLED_IN
from infra.redis_transport import captured_sends
from tests.support.fleets import in_process_fleet
from workers.bootstrap import Fleet

# The reply address is an id of the sending app and thread; no result is ever sent back to it.
PER_SENDER = FILLED_IN | {("properties", "reply_to")}


@pytest.fixture
def fleet(postgres_url: str, redis_url: str) -> Iterator[Fleet]:
    fleet = in_process_fleet(redis_url, redis_url, postgres_url)
    fleet.publisher.connect()
    yield fleet
    fleet.close()


@pytest.fixture
def producer(fleet: Fleet) -> Iterator[Producer]:
    producer = Producer(fleet.settings)
    yield producer
    producer.close()


def an_event(route: Route) -> Event:
    return new_event(route.type, {"account": "a", "amount": 1}, source="t", id=f"id-{route.type}")


def built(publisher: Any, events: list[Event]) -> list[tuple[str, dict[str, Any]]]:
    with captured_sends() as sends:
        publisher.publish(events)
    return [(key, json.loads(payload)) for key, payload in sends]


def comparable(message: dict[str, Any]) -> dict[str, Any]:
    parts = {
        part: {k: v for k, v in message[part].items() if (part, k) not in PER_SENDER}
        for part in ("headers", "properties")
    }
    return {**message, **parts, "body": json.loads(base64.b64decode(message["body"]))}


@pytest.mark.parametrize("route", Registry().routes(), ids=lambda route: route.type)
def test_the_producer_builds_the_message_the_workers_app_builds(
    fleet: Fleet, producer: Producer, route: Route
) -> None:
    events = [an_event(route)]
    [(key, ours)] = built(producer.publisher, events)
    [(their_key, theirs)] = built(fleet.publisher, events)
    assert key == their_key
    assert comparable(ours) == comparable(theirs)


def test_concurrent_single_publishes_share_messages_and_every_event_arrives(
    fleet: Fleet, producer: Producer
) -> None:
    route = Registry().route_for("demo.deposit_recorded")
    key = fleet.settings.queue_prefix + route.queue

    def publish_share(start: int) -> None:
        for n in range(start, 800, 8):
            producer.publish([new_event(route.type, {"account": "a", "amount": 1}, source="t", id=f"c-{n}")])

    threads = [threading.Thread(target=publish_share, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    messages = [json.loads(raw) for raw in fleet.redis.lrange(key, 0, -1)]  # type: ignore[union-attr]
    fleet.redis.delete(key)
    ids = [
        json.loads(event)["id"]
        for m in messages
        for event in json.loads(base64.b64decode(m["body"]))[1]["events"]
    ]
    assert sorted(ids) == sorted(f"c-{n}" for n in range(800))
    assert len(messages) < 800, "calls made while a send was under way went out together"
