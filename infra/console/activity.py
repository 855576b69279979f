"""What the console's charts and rates read: event history bucketed by minute, and by route.

All of it is computed by the database from `fleet_event_history` on each request, so the web
process holds no history of its own, whatever passes through the fleet.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Engine, Integer, cast, func, select

from infra.graph.schema import graph_subscriptions
from infra.schema import event_history


def per_minute(engine: Engine, *, now: float, minutes: int) -> dict[str, list[int]]:
    """Entries per outcome in each of the last `minutes` whole minutes, oldest first."""
    start = (int(now) // 60 - minutes + 1) * 60
    bucket = cast(func.floor((event_history.c.at - start) / 60), Integer).label("bucket")
    query = (
        select(event_history.c.outcome, bucket, func.count())
        .where(event_history.c.at >= start)
        .group_by(event_history.c.outcome, bucket)
    )
    series: dict[str, list[int]] = defaultdict(lambda: [0] * minutes)
    with engine.connect() as connection:
        for outcome, index, count in connection.execute(query):
            if 0 <= index < minutes:
                series[outcome][index] += count
    return dict(series)


def by_route(engine: Engine, *, since: float) -> list[tuple[str, str, str, int]]:
    """(event type, handler, outcome, count) since `since`: the queues page's rates in and out."""
    query = (
        select(event_history.c.event_type, event_history.c.handler, event_history.c.outcome, func.count())
        .where(event_history.c.at >= since)
        .group_by(event_history.c.event_type, event_history.c.handler, event_history.c.outcome)
    )
    with engine.connect() as connection:
        return [(row[0], row[1], row[2], row[3]) for row in connection.execute(query)]


def graph_subscription_rows(engine: Engine, limit: int = 500) -> list[dict[str, Any]]:
    """Graph subscriptions, soonest expiry first; never their clientState secret."""
    columns = [column for column in graph_subscriptions.c if column.name != "client_state"]
    query = select(*columns).order_by(graph_subscriptions.c.expires_at).limit(limit)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
