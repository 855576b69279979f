"""What beat runs, referring to tasks by their stable names."""

from __future__ import annotations

from typing import Any

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "release-due-retries": {"task": "fleet.retries.release_due", "schedule": 1.0, "options": {"expires": 5}},
    "relay-outbox": {"task": "fleet.outbox.relay", "schedule": 5.0, "options": {"expires": 10}},
    "prune-event-history": {"task": "fleet.history.prune", "schedule": 3600.0, "options": {"expires": 600}},
    "archive-old-dead-letters": {
        "task": "fleet.dead_letters.archive_old",
        "schedule": 3600.0,
        "options": {"expires": 600},
    },
    "time-out-orders": {"task": "fleet.orders.time_out", "schedule": 5.0, "options": {"expires": 10}},
    # Graph: an event per slot, handled by fleet.graph.renew_subscriptions / fleet.graph.resync_all.
    "graph-renew-subscriptions": {"publish": "graph.renewal_due", "every": 900.0, "data": {}},
    "graph-delta-resync": {"publish": "graph.resync_due", "every": 3600.0, "data": {}},
}
