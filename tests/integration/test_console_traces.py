"""The console shows the trace an event belongs to: its timeline and its dead letter carry the trace
id of its traceparent, linked to the trace viewer named by FLEET_TRACE_URL; a malformed traceparent
shows nothing.

The trace id comes from the history and the letter's envelope, whatever the broker: Redis only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from handlers.envelope import new_event
from tests.integration.conftest import FleetUnderTest
from tests.integration.test_console_access import client_for, console_runtime_of, log_in
from tests.support.processes import wait_until
from workers.bootstrap import Runtime

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("broker_url", ["redis"], indirect=True)]

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"
ZERO_TRACE = f"00-{'0' * 32}-00f067aa0ba902b7-01"  # passes the envelope's pattern, names no trace
TRACE_URL = "https://jaeger.test:16686/trace/{trace_id}"
TRACE_LINK = re.compile(r'<a class="trace" href="([^"]+)"[^>]*>([0-9a-f]{32})</a>')


@pytest.fixture
def linked_runtime(fleet_under_test: FleetUnderTest, redis_url: str, postgres_url: str) -> Iterator[Runtime]:
    runtime = console_runtime_of(fleet_under_test, redis_url, postgres_url, trace_url=TRACE_URL)
    yield runtime
    runtime.fleet().close()


def _deposit(event_id: str, traceparent: str, amount: int = 1) -> object:
    data = {"account": "acc-1", "amount": amount}
    return new_event("demo.deposit_recorded", data, source="tests", id=event_id, traceparent=traceparent)


def test_an_events_timeline_and_dead_letter_link_to_its_trace(
    fleet_under_test: FleetUnderTest, linked_runtime: Runtime, redis_url: str, postgres_url: str
) -> None:
    fut = fleet_under_test
    fut.start_worker(concurrency=1)
    fut.fleet.publisher.publish([_deposit("traced-1", TRACEPARENT), _deposit("untraced-1", ZERO_TRACE)])
    fut.fleet.publisher.publish([_deposit("traced-bad", TRACEPARENT, amount=0)])  # invalid: dead-lettered
    history = fut.fleet.history
    for event_id in ("traced-1", "untraced-1", "traced-bad"):
        wait_until(lambda e=event_id: history.timeline(e), timeout=30, what=f"{event_id}'s history")
    wait_until(lambda: len(fut.letters()) == 1, timeout=30, what="the invalid event's dead letter")

    client = client_for(linked_runtime)
    log_in(client, "bob")
    timeline = client.get("/console/events/timeline?id=traced-1")
    assert timeline.status_code == 200
    assert TRACE_LINK.findall(timeline.text) == [(f"https://jaeger.test:16686/trace/{TRACE}", TRACE)]

    letter = client.get(f"/console/dead-letters/{fut.letters()[0].id}")
    assert TRACE_LINK.findall(letter.text) == [(f"https://jaeger.test:16686/trace/{TRACE}", TRACE)]

    malformed = client.get("/console/events/timeline?id=untraced-1")
    assert "handled" in malformed.text
    assert 'class="trace"' not in malformed.text
    assert "0" * 32 not in malformed.text

    unlinked = console_runtime_of(fut, redis_url, postgres_url)  # FLEET_TRACE_URL unset: the id, no link
    try:
        plain = client_for(unlinked)
        log_in(plain, "bob")
        page = plain.get("/console/events/timeline?id=traced-1").text
        assert f'<code class="trace">{TRACE}</code>' in page
        assert '<a class="trace"' not in page
    finally:
        unlinked.fleet().close()
