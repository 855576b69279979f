"""A `Fleet` of this process for tests that drive adapters directly (no worker processes)."""

from __future__ import annotations

import uuid
from typing import Any

from infra.settings import Settings
from workers.bootstrap import Fleet, Runtime


def in_process_fleet(broker_url: str, redis_url: str, postgres_url: str, **settings: Any) -> Fleet:
    """A fleet on these services, with queue and key prefixes of its own."""
    run = uuid.uuid4().hex[:8]
    return Runtime(
        Settings(
            broker_url=broker_url,
            redis_url=redis_url,
            database_url=postgres_url,
            queue_prefix=f"c{run}.",
            key_prefix=f"c{run}",
            **settings,
        )
    ).fleet()
