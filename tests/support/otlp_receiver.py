"""An OTLP/HTTP trace receiver on loopback: the fleet's processes export their spans to it, and
tests read them back. It decodes `ExportTraceServiceRequest` with OpenTelemetry's own protobuf
classes (opentelemetry-proto), so what it keeps is what a collector would have received."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from bench.otlp_sink import OtlpSink


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    kind: int
    """OTLP's SpanKind: 2 server, 3 client, 4 producer, 5 consumer."""
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    links: list[tuple[str, str]]
    """(trace id, span id) of each linked span."""
    events: list[tuple[str, dict[str, Any]]]
    status_code: int
    """OTLP's StatusCode: 0 unset, 1 ok, 2 error."""
    status_message: str = ""


SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5
STATUS_ERROR = 2


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


def _attributes(items: Any) -> dict[str, Any]:
    return {item.key: _value(item.value) for item in items}


@dataclass
class OtlpReceiver:
    _spans: list[ReceivedSpan] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0

    def __post_init__(self) -> None:
        self._sink = OtlpSink(lambda body: self._take(ExportTraceServiceRequest.FromString(body)))

    @property
    def endpoint(self) -> str:
        return self._sink.endpoint

    def env(self) -> dict[str, str]:
        """What points a fleet process at this receiver; spans leave within 0.2 s, not 5 s."""
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def close(self) -> None:
        self._sink.close()

    def _take(self, request: ExportTraceServiceRequest) -> None:
        received = []
        for resource_spans in request.resource_spans:
            service = str(_attributes(resource_spans.resource.attributes).get("service.name", ""))
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            service=service,
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            attributes=_attributes(span.attributes),
                            links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                            events=[(event.name, _attributes(event.attributes)) for event in span.events],
                            status_code=span.status.code,
                            status_message=span.status.message,
                        )
                    )
        with self._lock:
            self._spans += received
            self.requests += 1
