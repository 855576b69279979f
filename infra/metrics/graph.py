"""`fleet_graph_subscription_expiry_timestamp_seconds{resource}`: when each kept subscription
lapses, read from the database at scrape time (alert when it comes near: renewal has stopped)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from handlers.graph.ports import Subscription

EXPIRY_METRIC = "fleet_graph_subscription_expiry_timestamp_seconds"


class SubscriptionExpiryCollector(Collector):
    """The earliest expiry per resource of the active subscriptions; register it with the
    registry /metrics serves: `SubscriptionExpiryCollector(fleet.graph.stored_subscriptions.all)`."""

    def __init__(self, stored: Callable[[], Iterable[Subscription]]) -> None:
        self._stored = stored

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            EXPIRY_METRIC, "Unix time when the Graph subscription on a resource expires", labels=["resource"]
        )
        earliest: dict[str, float] = {}
        for sub in self._stored():
            if sub.status == "active":
                stamp = sub.expires_at.timestamp()
                earliest[sub.resource] = min(stamp, earliest.get(sub.resource, stamp))
        for resource, stamp in sorted(earliest.items()):
            gauge.add_metric([resource], stamp)
        yield gauge
