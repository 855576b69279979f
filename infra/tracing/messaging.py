"""The spans of an event's life, by OpenTelemetry's messaging conventions.

An event's creation context is its CloudEvents `traceparent`: given by its producer, or else the
context of the `send` span that published it, and never replaced on a later hop. A worker's
`process` span has that context as parent and links to it, so one trace holds producer and
consumer; many events run together get one span linking each event's, with a `process` span
per event inside. A handler's follow-ups get creation contexts of their own: a `create` span
each, a child of the cause's `process` span and linked to the cause's creation context.

Nothing here costs more than a check when no SDK is installed (infra/tracing/setup.py): the
API's provider is then a proxy, and every function returns at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from engine.ports import NoTracer
from handlers.envelope import Event
from handlers.registry import Registry, Route
from handlers.trace_context import parse
from infra.tracing import conventions as attr

_tracer = trace.get_tracer("fleet")
_sending: ContextVar[bool] = ContextVar("fleet_sending", default=False)
_batch: ContextVar[str | None] = ContextVar("fleet_batch_destination", default=None)
MAX_LINKS = 128  # the SDK's default limit of links on a span (OTEL_SPAN_LINK_COUNT_LIMIT)


def active() -> bool:
    """Whether a tracer provider is installed in this process (ours, or the application's)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def creation_context(traceparent: str | None) -> SpanContext | None:
    """The span context a `traceparent` names, or None. Read by the fleet's reader
    (handlers/trace_context.py), not by the propagator: a batch reads one per event."""
    parsed = parse(traceparent)
    if parsed is None:
        return None
    flags = TraceFlags(TraceFlags.SAMPLED if parsed.sampled else TraceFlags.DEFAULT)
    return SpanContext(parsed.trace_id, parsed.parent_id, is_remote=True, trace_flags=flags)


def traceparent(span: Span) -> str | None:
    """The W3C `traceparent` of `span`, or None for the no-op span."""
    context = span.get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def current_traceparent() -> str | None:
    """The `traceparent` of the current span (a bridge writes it into the message it sends)."""
    return traceparent(trace.get_current_span())


def _links(events: Sequence[Event]) -> list[Link]:
    links = []
    for event in events:
        context = creation_context(event.traceparent)
        if context is not None:
            links.append(Link(context))
            if len(links) == MAX_LINKS:
                break
    return links


@contextmanager
def sending(
    events: Sequence[Event], system: str, destination_of: Callable[[], str | None]
) -> Iterator[Sequence[Event]]:
    """A `send` span (PRODUCER) around a publish of `events`; yields them, those without a
    creation context given the span's as their `traceparent`. Inside another `send` (the web
    process's threads publishing a request's events), yields them as they are."""
    if _sending.get() or not events or not active():
        yield events
        return
    token = _sending.set(True)
    try:
        destination = destination_of()
        name = f"send {destination}" if destination else "send"
        with _tracer.start_as_current_span(name, kind=SpanKind.PRODUCER, links=_links(events)) as span:
            if span.is_recording():
                span.set_attributes(
                    {
                        attr.SYSTEM: system,
                        attr.OPERATION_TYPE: "send",
                        attr.OPERATION_NAME: "send",
                        attr.BATCH_COUNT: len(events),
                        **({attr.DESTINATION: destination} if destination else {}),
                        **(_event_attributes(events[0]) if len(events) == 1 else {}),
                    }
                )
            parent = traceparent(span)
            if parent is not None:
                events = [
                    event if event.traceparent else event.model_copy(update={"traceparent": parent})
                    for event in events
                ]
            yield events
    finally:
        _sending.reset(token)


def _event_attributes(event: Event) -> dict[str, Any]:
    return {attr.EVENT_ID: event.id, attr.EVENT_TYPE: event.type, attr.EVENT_SOURCE: event.source}


class OtelTracer:
    """The engine's `Tracer` (engine/ports.py) on the OpenTelemetry API."""

    def __init__(
        self, system: str, registry: Registry, queue_prefix: str = "", *, batched_events: bool = False
    ) -> None:
        self._system = system
        self._registry = registry
        self._prefix = queue_prefix
        self._batched_events = batched_events
        """A span for each event of a batch (FLEET_TRACE_BATCHED_EVENTS), not only the batch's."""

    @contextmanager
    def processing(
        self, route: Route, events: Sequence[Event], attempt: int, message_id: str
    ) -> Iterator[None]:
        destination = self._prefix + route.queue
        name = f"process {destination}"
        if len(events) == 1:
            [event] = events
            cause = creation_context(event.traceparent)
            parent = trace.set_span_in_context(trace.NonRecordingSpan(cause)) if cause else Context()
            links = [Link(cause)] if cause else []
            with _tracer.start_as_current_span(
                name,
                context=parent,
                kind=SpanKind.CONSUMER,
                links=links,
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                if span.is_recording():
                    span.set_attributes(
                        {
                            **self._common(destination, "process"),
                            **_event_attributes(event),
                            attr.ATTEMPT: attempt,
                            **({attr.MESSAGE_ID: message_id} if message_id else {}),
                        }
                    )
                yield
            return
        with _tracer.start_as_current_span(
            name,
            context=Context(),
            kind=SpanKind.CONSUMER,
            links=_links(events),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            if span.is_recording():
                span.set_attributes(
                    {
                        **self._common(destination, "process"),
                        attr.BATCH_COUNT: len(events),
                        attr.ATTEMPT: attempt,
                        **({attr.MESSAGE_ID: message_id} if message_id else {}),
                    }
                )
            token = _batch.set(destination) if span.is_recording() and self._batched_events else None
            try:
                yield
            finally:
                if token is not None:
                    _batch.reset(token)

    @contextmanager
    def handling(self, route: Route, event: Event, attempt: int) -> Iterator[None]:
        destination = _batch.get()
        if destination is None:  # one event, or a batch whose span stands for its events
            yield
            return
        cause = creation_context(event.traceparent)
        with _tracer.start_as_current_span(
            f"process {destination}",
            kind=SpanKind.CONSUMER,
            links=[Link(cause)] if cause else [],
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            span.set_attributes(
                {**self._common(destination, "process"), **_event_attributes(event), attr.ATTEMPT: attempt}
            )
            try:
                yield
            except Exception as exc:
                _fail(span, exc)
                raise

    def created(self, cause: Event, follow_ups: list[Event]) -> list[Event]:
        if not trace.get_current_span().is_recording():
            return follow_ups
        cause_context = creation_context(cause.traceparent)
        made = []
        for follow_up in follow_ups:
            destination = self._prefix + self._registry.route_for(follow_up.type).queue
            with _tracer.start_as_current_span(
                f"create {destination}",
                kind=SpanKind.PRODUCER,
                links=[Link(cause_context)] if cause_context else [],
            ) as span:
                span.set_attributes({**self._common(destination, "create"), **_event_attributes(follow_up)})
                made.append(follow_up.model_copy(update={"traceparent": traceparent(span)}))
        return made

    def failed(self, exc: BaseException) -> None:
        span = trace.get_current_span()
        if span.is_recording():
            _fail(span, exc)

    def retrying(self, attempt: int, delay: float, reason: str) -> None:
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(
                "retry", {attr.ATTEMPT: attempt, "fleet.retry.delay_seconds": delay, "fleet.reason": reason}
            )

    def dead_lettered(self, attempt: int, reason: str) -> None:
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event("dead_lettered", {attr.ATTEMPT: attempt, "fleet.reason": reason})

    def _common(self, destination: str, operation: str) -> dict[str, Any]:
        return {
            attr.SYSTEM: self._system,
            attr.OPERATION_TYPE: operation,
            attr.OPERATION_NAME: operation,
            attr.DESTINATION: destination,
        }


def _fail(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def tracer_for(
    system: str, registry: Registry, queue_prefix: str, *, batched_events: bool = False
) -> OtelTracer | NoTracer:
    """The engine's tracer: the no-op one when this process exports nothing."""
    if not active():
        return NoTracer()
    return OtelTracer(system, registry, queue_prefix, batched_events=batched_events)
