"""The processes' log lines: text by default; with `FLEET_LOG_FORMAT=json`, one JSON object per
line with the time, level, logger and message, and, when known, the event being run (id, type,
attempt: engine/running.py) and the current span's trace and span ids (infra/tracing/), the
same ids the exported spans carry."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from engine.running import current

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def json_line(created: float, level: str, logger: str, message: str) -> dict[str, Any]:
    return {
        "timestamp": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
        "level": level,
        "logger": logger,
        "message": message,
    }


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = json_line(record.created, record.levelname, record.name, record.getMessage())
        if (event := current.get()) is not None:
            line.update(event_id=event.event_id, event_type=event.event_type, attempt=event.attempt)
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            line.update(trace_id=f"{context.trace_id:032x}", span_id=f"{context.span_id:016x}")
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


def configure(level: str, log_format: str) -> None:
    """The root logger's one handler, on stderr, in `log_format` ("text" or "json")."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
    if log_format == "json":
        logging.captureWarnings(True)  # a warning is a log line too, not free text on stderr


def say_as_json(message: str, file: Any = None) -> None:
    """A line a process prints from a signal handler (Celery's shutdown notices), as JSON: one
    write, no logging lock."""
    line = json_line(time.time(), "WARNING", "celery.worker", message)
    stream = file or sys.__stderr__
    if stream is not None:
        os.write(stream.fileno(), (json.dumps(line) + "\n").encode())
