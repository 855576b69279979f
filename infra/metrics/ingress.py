"""Prometheus metrics of the HTTP ingress (the lead's /metrics serves them)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "fleet_ingress_requests_total",
    "Ingress requests answered, by endpoint and status.",
    ["endpoint", "status"],
)
DURATION = Histogram(
    "fleet_ingress_request_duration_seconds",
    "Time from request to answer, by endpoint.",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
GRAPH_REJECTED = Counter(
    "fleet_graph_notifications_rejected_total",
    "Graph notification items refused (never enqueued), by reason.",
    ["reason"],
)
EVENTS_ACCEPTED = Counter(
    "fleet_ingress_events_accepted_total", "Events durably handed to the broker, by endpoint.", ["endpoint"]
)
