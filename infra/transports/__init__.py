"""Transports other systems publish on: Azure Service Bus and Redis streams (producers and the
consumer-side adapters the bridges in workers/bridges/ drive)."""

from __future__ import annotations

PUBLISH_TARGETS = ("celery", "redis-stream", "servicebus")
"""Where `fleet publish --to` and `fleet.publish(..., to=)` can send events."""
