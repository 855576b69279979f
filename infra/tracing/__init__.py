"""OpenTelemetry traces, by the messaging semantic conventions (docs/tracing.md).

`setup.py` installs the SDK in a process when the standard `OTEL_*` variables name an exporter;
without one, nothing is installed and every span below is the API's no-op. `conventions.py` the
attribute names, `messaging.py` the spans: `send` around a publish, the engine's `Tracer` port
(`process`, `create`, retries and dead letters as span events), and the context a bridge carries.
"""
