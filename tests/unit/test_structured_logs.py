"""The JSON log line and when the SDK is installed: pure functions, no I/O (the spans and log
lines of real processes are tested in tests/integration/test_tracing.py)."""

from __future__ import annotations

import json
import logging
import sys

from engine.running import running
from handlers.envelope import new_event
from infra.logs import JsonFormatter
from infra.tracing.setup import exporter_configured


def record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("fleet.dispatch", logging.WARNING, __file__, 1, message, args, None)


def test_a_json_line_names_time_level_logger_and_message_and_the_event_being_run() -> None:
    event = new_event("demo.deposit_recorded", {"account": "a", "amount": 1}, source="tests", id="e-1")
    outside = json.loads(JsonFormatter().format(record("idle %s", "now")))
    with running(event, 3):
        inside = json.loads(JsonFormatter().format(record("failed on attempt %d", 3)))

    assert outside.keys() == {"timestamp", "level", "logger", "message"}
    assert (outside["level"], outside["logger"], outside["message"]) == (
        "WARNING",
        "fleet.dispatch",
        "idle now",
    )
    assert outside["timestamp"].endswith("+00:00")
    assert (inside["event_id"], inside["event_type"], inside["attempt"]) == (
        "e-1",
        "demo.deposit_recorded",
        3,
    )
    assert "trace_id" not in inside  # no span is current


def test_a_json_line_keeps_the_traceback_in_one_line() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        line = logging.LogRecord("fleet", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    text = JsonFormatter().format(line)
    assert "\n" not in text
    assert "ValueError: bad" in json.loads(text)["exception"]


def test_spans_are_exported_only_when_an_endpoint_is_set_and_the_sdk_is_not_disabled() -> None:
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    assert not exporter_configured({})
    assert exporter_configured(endpoint)
    assert exporter_configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"})
    assert not exporter_configured({**endpoint, "OTEL_SDK_DISABLED": "true"})
    assert not exporter_configured({**endpoint, "OTEL_TRACES_EXPORTER": "none"})
    assert exporter_configured({**endpoint, "OTEL_SDK_DISABLED": "false"})
