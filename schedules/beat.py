"""What beat runs, referring to tasks by their stable names."""

from __future__ import annotations

from typing import Any

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "release-due-retries": {"task": "fleet.retries.release_due", "schedule": 1.0, "options": {"expires": 5}},
    "relay-outbox": {"task": "fleet.outbox.relay", "schedule": 5.0, "options": {"expires": 10}},
}
