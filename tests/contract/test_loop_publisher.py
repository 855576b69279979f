"""The web process's Redis publisher, on real Redis: it sends from the event loop exactly the
messages the blocking publisher sends, one LPUSH per queue and no other command, and a broker that
cannot be reached is an error, not a hang."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from handlers.envelope import Event, new_event
from handlers.errors import UnknownEventType
from tests.support.fleets import in_process_fleet
from tests.support.ingress import TcpProxy
from tests.support.processes import free_port
from workers.bootstrap import Fleet

QUEUE = "fleet.demo"


def _fleet(broker_url: str, redis_url: str, postgres_url: str) -> Fleet:
    return in_process_fleet(broker_url, redis_url, postgres_url, batch_size=2)


@pytest.fixture
def fleet(postgres_url: str, redis_url: str) -> Iterator[Fleet]:
    fleet = _fleet(redis_url, redis_url, postgres_url)
    yield fleet
    fleet.redis.delete(fleet.settings.queue_name(QUEUE))
    fleet.close()


def deposits(*ids: str) -> list[Event]:
    return [new_event("demo.deposit_recorded", {"account": "a", "amount": 1}, source="t", id=i) for i in ids]


def _queued(fleet: Fleet) -> list[dict[str, Any]]:
    """The queue's messages, oldest first, as kombu stored them."""
    raw = fleet.redis.lrange(fleet.settings.queue_name(QUEUE), 0, -1)
    return [json.loads(message) for message in reversed(raw)]  # type: ignore[union-attr]


def _event_ids(message: dict[str, Any]) -> list[str]:
    _, kwargs, _ = json.loads(base64.b64decode(message["body"]))  # Celery's [args, kwargs, embed]
    return [json.loads(event)["id"] for event in kwargs["events"]]


def _comparable(message: dict[str, Any]) -> dict[str, Any]:
    """A message without what differs from send to send: ids, tags, timestamps, the due time, and
    the reply address (an id of the sending Celery app: the web process's is the producer's)."""
    headers = {k: v for k, v in message["headers"].items() if k not in {"id", "root_id", "fleet_due"}}
    per_send = {"correlation_id", "delivery_tag", "reply_to"}
    properties = {k: v for k, v in message["properties"].items() if k not in per_send}
    return {**message, "headers": headers, "properties": properties}


def test_the_loop_sends_the_messages_the_blocking_publisher_sends(fleet: Fleet) -> None:
    events = deposits("a", "b", "c")  # two messages: batch size 2
    fleet.publisher.publish(events)
    asyncio.run(fleet.loop_publisher.publish(events))
    queued = _queued(fleet)
    assert len(queued) == 4
    blocking, from_loop = queued[:2], queued[2:]
    assert [_event_ids(message) for message in from_loop] == [["a", "b"], ["c"]]
    assert [_comparable(m) for m in from_loop] == [_comparable(m) for m in blocking]
    assert from_loop[0]["headers"]["task"] == "fleet.demo.record_deposit"


def test_a_send_is_one_lpush_per_queue_and_no_other_command(fleet: Fleet, redis_url: str) -> None:
    invalidation = new_event("cache.invalidate", {"tags": ["t"]}, source="t", id="i")

    async def sends() -> list[list[str]]:
        await fleet.loop_publisher.publish(deposits("warm-up"))  # connects the channel
        logs = []
        for events in (deposits("a", "b", "c", "d", "e"), [*deposits("f"), invalidation]):
            with CommandLog(redis_url) as log:
                await fleet.loop_publisher.publish(events)
            logs.append(log.commands)
        return logs

    demo, cache = fleet.settings.queue_name(QUEUE), fleet.settings.queue_name("fleet.cache")
    try:
        one_queue, two_queues = asyncio.run(sends())
        assert one_queue == [f"LPUSH {demo}"]
        assert sorted(two_queues) == sorted([f"LPUSH {demo}", f"LPUSH {cache}"])  # one pipeline
        # The one LPUSH carried the three messages (batch size 2), queued as three LPUSHes would.
        assert [_event_ids(m) for m in _queued(fleet)] == [["warm-up"], ["a", "b"], ["c", "d"], ["e"], ["f"]]
        assert fleet.redis.llen(cache) == 1
    finally:
        fleet.redis.delete(cache)


def test_an_event_the_fleet_cannot_route_is_refused_before_anything_is_sent(fleet: Fleet) -> None:
    unknown = new_event("demo.never_heard_of", {}, source="t", id="x")
    with pytest.raises(UnknownEventType):
        asyncio.run(fleet.loop_publisher.publish([*deposits("a"), unknown]))
    assert _queued(fleet) == []


def test_a_broker_gone_is_an_error_at_once_and_back_it_takes_sends_again(
    postgres_url: str, redis_url: str
) -> None:
    proxy, through_proxy = TcpProxy.before(redis_url)
    fleet = _fleet(through_proxy, redis_url, postgres_url)

    async def sends() -> None:
        await fleet.loop_publisher.publish(deposits("before"))
        proxy.stop()
        started = time.monotonic()
        with pytest.raises(RedisError):
            await fleet.loop_publisher.publish(deposits("while-gone"))
        assert time.monotonic() - started < 1.0
        proxy.start()
        await fleet.loop_publisher.publish(deposits("after"))

    try:
        asyncio.run(sends())
        assert [event_id for message in _queued(fleet) for event_id in _event_ids(message)] == [
            "before",
            "after",
        ]
    finally:
        proxy.stop()
        fleet.redis.delete(fleet.settings.queue_name(QUEUE))
        fleet.close()


def test_a_broker_down_at_the_first_send_is_a_broker_error(postgres_url: str, redis_url: str) -> None:
    gone = _fleet(f"redis://127.0.0.1:{free_port()}/0", redis_url, postgres_url)
    started = time.monotonic()
    try:
        with pytest.raises(OperationalError):  # kombu's, connecting the channel that builds messages
            asyncio.run(gone.loop_publisher.publish(deposits("a")))
        assert time.monotonic() - started < 5.0, "one try, not kombu's usual several"
    finally:
        gone.close()


class CommandLog:
    """The commands sent to this test run's Redis database while it is open (MONITOR)."""

    END = "fleet-command-log-end"

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url)
        self._marker = redis.Redis.from_url(url)  # says where the log ends, on its own connection
        self._db = int(url.rsplit("/", 1)[1])
        self.commands: list[str] = []

    def __enter__(self) -> CommandLog:
        self._marker.ping()  # its connection is made (and its SELECT sent) before we listen
        self._monitor = self._client.monitor().__enter__()  # listening once this returns
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._marker.echo(self.END)
        self._reader.join(10)
        self._monitor.__exit__(None, None, None)
        self._client.close()
        self._marker.close()

    def _read(self) -> None:
        while True:
            entry: dict[str, Any] = self._monitor.next_command()
            if entry["db"] != self._db:
                continue
            if entry["command"] == f"ECHO {self.END}":
                return
            if ":arrivals:" in entry["command"]:
                continue  # the console's counts, sent after the answer to the coordination store
            self.commands.append(" ".join(str(entry["command"]).split(" ")[:2]))
