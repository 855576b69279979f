"""The console's reads of the broker and the Redis stream: which failures mean the broker is
unreachable (the pages then show a problem instead of failing), and the stream's consumer groups."""

from __future__ import annotations

from typing import Any

import kombu.exceptions
import redis
from redis import Redis

BROKER_UNREACHABLE: tuple[type[Exception], ...] = (
    kombu.exceptions.OperationalError,
    OSError,
    redis.RedisError,
)


def stream_groups(client: Redis, stream: str) -> list[dict[str, Any]]:
    """The stream's length and, per consumer group, what is pending (delivered, not acknowledged)
    and the lag (not yet delivered); one row without a group when none reads it yet, and none
    when the stream does not exist (nothing was ever published to it)."""
    try:
        length = int(client.xlen(stream))
        groups: list[dict[str, Any]] = client.xinfo_groups(stream)
    except redis.ResponseError:
        return []
    return [
        {
            "name": stream,
            "length": length,
            "group": group["name"].decode() if isinstance(group["name"], bytes) else group["name"],
            "consumers": group["consumers"],
            "pending": group["pending"],
            "lag": group.get("lag"),
        }
        for group in groups
    ] or [{"name": stream, "length": length, "group": "", "consumers": 0, "pending": 0, "lag": None}]
