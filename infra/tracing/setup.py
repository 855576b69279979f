"""The SDK, per process, from the standard `OTEL_*` variables alone.

With no exporter configured (neither `OTEL_EXPORTER_OTLP_ENDPOINT` nor
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or `OTEL_TRACES_EXPORTER=none`, or `OTEL_SDK_DISABLED=true`)
nothing is installed: the API's tracer is a no-op and no instrumentation is attached. Otherwise an
OTLP/HTTP exporter behind a BatchSpanProcessor, the sampler of `OTEL_TRACES_SAMPLER`, the
resource of `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES`. A worker calls `configure` in each
pool process after the fork (the processor's thread and the exporter's connections must not
cross it), and `shutdown` as the process exits, which sends what is still buffered.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry import trace

log = logging.getLogger("fleet.tracing")
_provider: Any = None


def exporter_configured(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() in ("none", ""):
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def enabled() -> bool:
    """Whether this process exports spans."""
    return _provider is not None


def configure(service_name: str) -> bool:
    """Install the SDK if an exporter is configured (once per process); `service_name` unless
    `OTEL_SERVICE_NAME` names it. Returns whether spans are exported."""
    global _provider  # noqa: PLW0603 (one tracer provider per process, as OpenTelemetry has it)
    if _provider is not None:
        return True
    if not exporter_configured():
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    provider = TracerProvider(resource=resource, shutdown_on_exit=True)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    HTTPXClientInstrumentor().instrument()  # the Graph and payment clients' calls
    log.info("traces exported to %s", _endpoint())
    return True


def instrument_engine(engine: Any) -> None:
    """The database statements of `engine` as spans, when this process exports them."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # Its declared range stops below SQLAlchemy 2.1, whose engine events it uses are unchanged:
    # tests/integration/test_tracing.py sees the statements' spans.
    SQLAlchemyInstrumentor().instrument(engine=engine, enable_commenter=False, skip_dep_check=True)


def instrument_asgi(app: Any) -> Any:
    """The web app with an HTTP server span per request, when this process exports spans."""
    if _provider is None:
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    return OpenTelemetryMiddleware(app, excluded_urls="healthz,readyz,metrics")


def shutdown() -> None:
    """Send what is buffered and stop exporting (at the process's exit)."""
    if _provider is not None:
        _provider.shutdown()


def _endpoint() -> str:
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT", ""
    )
