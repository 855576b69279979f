"""The web process's group commit: concurrent requests share broker sends, and every request
hears the outcome of the send its events were in."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from kombu.exceptions import OperationalError

from handlers.envelope import Event, new_event
from handlers.errors import UnknownEventType
from infra.loop_publisher import ThreadedPublisher
from workers.ingress.http import Problem
from workers.ingress.publishing import GroupPublisher


class RecordingPublisher:
    """Holds the first send until released, so that the next requests queue up behind it."""

    def __init__(self, fail_with: Exception | None = None, refuse_type: str | None = None) -> None:
        self.sends: list[list[str]] = []
        self.release = threading.Event()
        self.fail_with = fail_with
        self.refuse_type = refuse_type

    def publish(self, events: Sequence[Event]) -> list[str]:
        if not self.sends:
            self.release.wait(10)
        if self.refuse_type and any(event.type == self.refuse_type for event in events):
            raise UnknownEventType(self.refuse_type)
        self.sends.append([event.id for event in events])
        if self.fail_with:
            raise self.fail_with
        return [event.id for event in events]


def event(event_id: str, event_type: str = "demo.deposit_recorded") -> Event:
    return new_event(event_type, {"n": 1}, source="tests", id=event_id)


async def _publish_while_first_send_waits(
    publisher: RecordingPublisher, batches: list[list[Event]], senders: int = 1
) -> list[list[str] | BaseException]:
    group = GroupPublisher(ThreadedPublisher(publisher, threads=senders), senders=senders)
    first = asyncio.create_task(group.publish(batches[0], "events"))
    await asyncio.sleep(0.05)  # the first send is under way (and held)
    rest = [asyncio.create_task(group.publish(batch, "events")) for batch in batches[1:]]
    await asyncio.sleep(0.05)
    publisher.release.set()
    return await asyncio.gather(first, *rest, return_exceptions=True)


def test_requests_arriving_during_a_send_go_together_in_the_next() -> None:
    publisher = RecordingPublisher()
    batches = [[event("a")], [event("b"), event("c")], [event("d")]]
    results = asyncio.run(_publish_while_first_send_waits(publisher, batches))
    assert results == [["a"], ["b", "c"], ["d"]]
    assert publisher.sends == [["a"], ["b", "c", "d"]]


def test_with_a_send_under_way_requests_wait_to_go_together_though_a_sender_is_free() -> None:
    publisher = RecordingPublisher()
    batches = [[event("a")], [event("b")], [event("c")], [event("d")]]
    results = asyncio.run(_publish_while_first_send_waits(publisher, batches, senders=2))
    assert results == [["a"], ["b"], ["c"], ["d"]]
    assert sorted(publisher.sends) == [["a"], ["b", "c", "d"]]  # not b alone on the free sender


def test_a_broker_failure_answers_every_request_of_the_send_with_503() -> None:
    publisher = RecordingPublisher(fail_with=OperationalError("connection refused"))
    results = asyncio.run(
        _publish_while_first_send_waits(publisher, [[event("a")], [event("b")], [event("c")]])
    )
    assert all(isinstance(result, Problem) and result.status == 503 for result in results)
    assert all("Retry-After" in result.headers for result in results if isinstance(result, Problem))


def test_one_request_with_an_unsendable_event_does_not_fail_the_others_of_its_send() -> None:
    publisher = RecordingPublisher(refuse_type="demo.unknown")
    batches = [[event("a")], [event("b")], [event("x", "demo.unknown")], [event("c")]]
    results = asyncio.run(_publish_while_first_send_waits(publisher, batches))
    assert results[:2] == [["a"], ["b"]] and results[3] == ["c"]
    assert isinstance(results[2], Problem) and results[2].status == 422
    assert publisher.sends == [["a"], ["b"], ["c"]]


def test_nothing_to_publish_sends_nothing() -> None:
    publisher = RecordingPublisher()
    assert asyncio.run(GroupPublisher(ThreadedPublisher(publisher)).publish([], "events")) == []
    assert publisher.sends == []
