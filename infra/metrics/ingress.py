"""Prometheus metrics of the HTTP ingress (the lead's /metrics serves them).

`key_id` is the id of the API key a request authenticated with (never the key, nor an id a
caller merely presented): its values are bounded by the keys operators issued; requests that
no key vouched for carry it empty."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "fleet_ingress_requests_total",
    "Ingress requests answered, by endpoint, status, the API key that authenticated it, and outcome.",
    ["endpoint", "status", "key_id", "outcome"],
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


def outcome(status: int) -> str:
    """A request's outcome, a handful of values an alert or a producer's owner can read."""
    if 200 <= status < 300:
        return "accepted"
    named = {401: "unauthenticated", 403: "forbidden", 413: "too_large", 429: "throttled", 503: "unavailable"}
    return named.get(status, "invalid" if status < 500 else "error")
