"""Traces and structured logs from real processes: a `fleet web` and a worker export their spans
over OTLP/HTTP to a receiver in the test (tests/support/otlp_receiver.py), which reads them back
as a collector would. Redis broker only: what is traced does not depend on the broker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from infra.transports.redis_stream import EVENT_FIELD, TRACEPARENT_FIELD
from tests.integration.conftest import FleetUnderTest
from tests.integration.helpers import deposit
from tests.integration.test_ingress_events import api_key
from tests.support.ingress import start_web
from tests.support.otlp_receiver import CONSUMER, PRODUCER, SERVER, STATUS_ERROR, OtlpReceiver, ReceivedSpan
from tests.support.processes import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """Redis broker only: the spans are the same on RabbitMQ but for `messaging.system`, and the
    stream bridge reads Redis."""
    return redis_url


@pytest.fixture
def fleet_env(fleet_env: dict[str, str]) -> dict[str, str]:
    return {**fleet_env, "FLEET_REDIS_STREAM": f"events.{uuid.uuid4().hex[:8]}"}


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    """Asked for before the fleet: it outlives the processes, which export their last spans."""
    receiver = OtlpReceiver()
    yield receiver
    receiver.close()


def post(fleet: FleetUnderTest, base: str, event: dict[str, object]) -> None:
    auth = {"Authorization": f"Bearer {api_key(fleet, 'demo.*')}"}
    body = {"specversion": "1.0", "source": "https://shop.example", **event}
    response = httpx.post(
        f"{base}/events",
        content=json.dumps(body),
        headers={**auth, "Content-Type": "application/cloudevents+json"},
        timeout=30,
    )
    assert response.status_code == 202, response.text


def one(spans: list[ReceivedSpan], what: str) -> ReceivedSpan:
    assert len(spans) == 1, f"{what}: {len(spans)} spans: {[s.name for s in spans]}"
    return spans[0]


def of_event(spans: list[ReceivedSpan], name: str, event_id: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.name == name and s.attributes.get("cloudevents.event_id") == event_id]


def test_one_trace_holds_the_request_its_send_the_processing_its_statements_and_the_follow_up(
    otlp: OtlpReceiver, fleet_under_test: FleetUnderTest
) -> None:
    fleet_under_test.start_worker(env=otlp.env())
    _, base = start_web(fleet_under_test, env=otlp.env())
    post(
        fleet_under_test,
        base,
        {
            "id": "traced-1",
            "type": "demo.deposit_recorded",
            "data": {"account": "a-1", "amount": 5, "email": "a@example.com"},
        },
    )

    queue = f"{fleet_under_test.env['FLEET_QUEUE_PREFIX']}.fleet.demo"
    wait_until(  # each pool process exports on its own: the cause's spans may come after its follow-up's
        lambda: all(of_event(otlp.spans(), f"process {queue}", e) for e in ("traced-1", "traced-1/receipt")),
        timeout=60,
        what=f"the follow-up's process span in {[(s.service, s.name) for s in otlp.spans()]}",
    )
    spans = otlp.spans()
    server = one([s for s in spans if s.kind == SERVER and s.service == "fleet-web"], "HTTP server spans")
    assert server.attributes.get("http.route", server.name).endswith("/events") or "/events" in server.name
    trace_id = server.trace_id

    send = one(of_event(spans, f"send {queue}", "traced-1"), "send spans of the event")
    assert (send.kind, send.trace_id, send.parent_span_id) == (PRODUCER, trace_id, server.span_id)
    assert send.attributes["messaging.system"] == "redis"
    assert send.attributes["messaging.operation.type"] == "send"
    assert send.attributes["messaging.destination.name"] == queue
    assert send.attributes["messaging.batch.message_count"] == 1
    assert send.attributes["cloudevents.event_type"] == "demo.deposit_recorded"
    assert send.attributes["cloudevents.event_source"] == "https://shop.example"

    # The worker's span: its parent is the creation context (the send span), and it links to it.
    process = one(of_event(spans, f"process {queue}", "traced-1"), "process spans of the event")
    assert (process.kind, process.trace_id, process.parent_span_id) == (CONSUMER, trace_id, send.span_id)
    assert (trace_id, send.span_id) in process.links
    assert process.service == "fleet-worker"
    assert process.attributes["messaging.operation.type"] == "process"
    assert process.attributes["messaging.operation.name"] == "process"
    assert process.attributes["messaging.destination.name"] == queue
    assert process.attributes["messaging.message.id"]
    assert process.attributes["fleet.attempt"] == 1
    statements = [
        s for s in spans if s.parent_span_id == process.span_id and "db.system" in str(s.attributes)
    ]
    assert statements, "the database statement is a child of the process span"
    assert all(s.trace_id == trace_id for s in statements)

    # The follow-up: a creation context of its own, linked to its cause's; sent and processed.
    create = one(of_event(spans, f"create {queue}", "traced-1/receipt"), "create spans of the follow-up")
    assert (create.kind, create.trace_id, create.parent_span_id) == (PRODUCER, trace_id, process.span_id)
    assert (trace_id, send.span_id) in create.links
    assert create.attributes["messaging.operation.type"] == "create"
    follow_up_send = one(
        [s for s in spans if s.name == f"send {queue}" and s.parent_span_id == process.span_id],
        "send spans of the follow-up",
    )
    assert (trace_id, create.span_id) in follow_up_send.links
    follow_up = one(of_event(spans, f"process {queue}", "traced-1/receipt"), "process spans of the follow-up")
    assert (follow_up.trace_id, follow_up.parent_span_id) == (trace_id, create.span_id)
    assert (trace_id, create.span_id) in follow_up.links
    assert follow_up.attributes["cloudevents.event_type"] == "demo.receipt_requested"


def test_a_retried_event_shows_each_attempt_and_a_dead_lettered_one_shows_why(
    otlp: OtlpReceiver, fleet_under_test: FleetUnderTest
) -> None:
    fleet_under_test.start_worker(env=otlp.env())
    _, base = start_web(fleet_under_test, env=otlp.env())
    data = {"account": "a-1", "amount": 1, "fail_times": 9}
    post(fleet_under_test, base, {"id": "flaky-1", "type": "demo.flaky_requested", "data": data})

    queue = f"{fleet_under_test.env['FLEET_QUEUE_PREFIX']}.fleet.demo"

    def dead_lettered() -> list[ReceivedSpan]:
        spans = of_event(otlp.spans(), f"process {queue}", "flaky-1")
        return [s for s in spans if any(name == "dead_lettered" for name, _ in s.events)]

    wait_until(dead_lettered, timeout=60, what="the dead-lettered attempt's span")
    send = one(of_event(otlp.spans(), f"send {queue}", "flaky-1"), "send spans")
    attempts = of_event(otlp.spans(), f"process {queue}", "flaky-1")
    # Every attempt runs in the event's trace, as a child of its creation context.
    assert {(s.trace_id, s.parent_span_id) for s in attempts} == {(send.trace_id, send.span_id)}
    assert {s.attributes["fleet.attempt"] for s in attempts} == {1, 2, 3, 4}
    assert all(s.status_code == STATUS_ERROR for s in attempts)
    retries = sorted(
        attributes["fleet.attempt"] for s in attempts for name, attributes in s.events if name == "retry"
    )
    assert retries == [1, 2, 3]
    [last] = dead_lettered()
    [(_, why)] = [(name, attributes) for name, attributes in last.events if name == "dead_lettered"]
    assert why["fleet.attempt"] == 4
    assert why["fleet.reason"] == "RetryableError: downstream unavailable (attempt 4)"
    assert "downstream unavailable" in last.status_message


def test_json_logs_parse_line_by_line_and_carry_the_trace_id_of_the_spans(
    otlp: OtlpReceiver, fleet_under_test: FleetUnderTest
) -> None:
    worker = fleet_under_test.start_worker(env={**otlp.env(), "FLEET_LOG_FORMAT": "json"})
    _, base = start_web(fleet_under_test, env=otlp.env())
    data = {"account": "a-1", "amount": 1, "fail_times": 1}
    post(fleet_under_test, base, {"id": "logged-1", "type": "demo.flaky_requested", "data": data})
    wait_until(lambda: "logged-1" in fleet_under_test.deposits(), timeout=60, what="the deposit")

    lines = [json.loads(line) for line in worker.log().splitlines() if line.strip()]
    assert all({"timestamp", "level", "logger", "message"} <= line.keys() for line in lines)
    [retry] = [line for line in lines if "failed on attempt" in line["message"]]
    assert (retry["event_id"], retry["event_type"], retry["attempt"]) == (
        "logged-1",
        "demo.flaky_requested",
        1,
    )
    queue = f"{fleet_under_test.env['FLEET_QUEUE_PREFIX']}.fleet.demo"
    wait_until(
        lambda: len(of_event(otlp.spans(), f"process {queue}", "logged-1")) >= 2, timeout=30, what="spans"
    )
    first = [
        s
        for s in of_event(otlp.spans(), f"process {queue}", "logged-1")
        if s.attributes["fleet.attempt"] == 1
    ]
    assert retry["trace_id"] in {s.trace_id for s in first}
    assert retry["span_id"] in {s.span_id for s in first}


def test_the_stream_bridge_takes_the_traceparent_field_as_the_creation_context_of_an_event_without_one(
    otlp: OtlpReceiver, fleet_under_test: FleetUnderTest
) -> None:
    fleet_under_test.start_worker(env=otlp.env())
    bridge = fleet_under_test.start("bridge", "redis-stream", env=otlp.env())
    bridge.wait_for_log("bridging stream", timeout=60)
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    event = deposit("streamed-1")
    assert event.traceparent is None
    fields = {EVENT_FIELD: event.to_json(), TRACEPARENT_FIELD: f"00-{trace_id}-{span_id}-01".encode()}
    fleet_under_test.redis.xadd(fleet_under_test.env["FLEET_REDIS_STREAM"], fields)  # type: ignore[arg-type]

    queue = f"{fleet_under_test.env['FLEET_QUEUE_PREFIX']}.fleet.demo"
    [process] = wait_until(
        lambda: of_event(otlp.spans(), f"process {queue}", "streamed-1"), timeout=60, what="the process span"
    )
    assert (process.trace_id, process.parent_span_id) == (trace_id, span_id)
    assert (trace_id, span_id) in process.links


@pytest.mark.parametrize("span_each", [False, True], ids=["batch-span", "and-a-span-each"])
def test_events_run_together_get_a_span_linking_each_creation_context_and_if_asked_a_process_span_each(
    otlp: OtlpReceiver, fleet_under_test: FleetUnderTest, span_each: bool
) -> None:
    fleet_under_test.start_worker(env={**otlp.env(), "FLEET_TRACE_BATCHED_EVENTS": str(span_each).lower()})
    _, base = start_web(fleet_under_test, env=otlp.env())
    given = [(uuid.uuid4().hex, uuid.uuid4().hex[:16]) for _ in range(3)]
    batch = [
        {
            "specversion": "1.0",
            "source": "https://shop.example",
            "id": f"together-{n}",
            "type": "demo.deposit_recorded",
            "data": {"account": "a-1", "amount": 1},
            "traceparent": f"00-{trace_id}-{span_id}-01",
        }
        for n, (trace_id, span_id) in enumerate(given)
    ]
    response = httpx.post(
        f"{base}/events",
        content=json.dumps(batch),
        headers={
            "Authorization": f"Bearer {api_key(fleet_under_test, 'demo.*')}",
            "Content-Type": "application/cloudevents-batch+json",
        },
        timeout=30,
    )
    assert response.status_code == 202, response.text

    queue = f"{fleet_under_test.env['FLEET_QUEUE_PREFIX']}.fleet.demo"
    ids = [f"together-{n}" for n in range(3)]

    def batch_spans() -> list[Any]:
        return [
            s
            for s in otlp.spans()
            if s.name == f"process {queue}" and s.attributes.get("messaging.batch.message_count")
        ]

    def web_sends() -> list[Any]:
        return [s for s in otlp.spans() if s.name == f"send {queue}" and s.service == "fleet-web"]

    wait_until(batch_spans, timeout=60, what="the span of the events run together")
    wait_until(web_sends, timeout=30, what="the web's send span")  # each process exports on its own
    if span_each:
        wait_until(
            lambda: all(of_event(otlp.spans(), f"process {queue}", event_id) for event_id in ids),
            timeout=30,
            what="a process span per event",
        )
    spans = otlp.spans()
    together = one(batch_spans(), "spans of the events run together")
    assert together.attributes["messaging.batch.message_count"] == 3
    assert set(together.links) == set(given)  # each event's creation context, as its producer gave it
    # The producer's traceparent is kept: the web's send span links to it and replaces nothing.
    send = one(web_sends(), "send spans")
    assert set(send.links) == set(given)
    if not span_each:  # the batch's span stands for its events
        assert [of_event(spans, f"process {queue}", event_id) for event_id in ids] == [[], [], []]
        return
    for event_id, context in zip(ids, given, strict=True):
        [process] = of_event(spans, f"process {queue}", event_id)
        assert (process.trace_id, process.parent_span_id) == (together.trace_id, together.span_id)
        assert process.links == [context]
