"""Prometheus metrics of the fleet, correct across processes and Celery's prefork pool.

Every `fleet` process writes its samples to files in one directory (prometheus_client's
multiprocess mode); whoever serves `/metrics` (the web process, a worker's metrics port) sums
the files. The directory must be known before `prometheus_client` is imported, so the `fleet`
entry point sets it first thing (infra/metrics/directory.py, workers/entry.py). Gauges about the
fleet's state (queue depths, DLQ size, outbox backlog, workers online) are read at scrape time
by `FleetStateCollector`, so they are right whichever process is asked and need no sampling job.
A scrape-time reader that fails (a database down or not migrated) leaves its gauges out and is
counted in `fleet_scrape_errors_total`; the rest of the scrape is served.

Labels are bounded: event type, handler, queue, outcome; never an event id.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from infra.metrics.directory import ENV

log = logging.getLogger("fleet.metrics")
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

EVENTS_RECEIVED = Counter(
    "fleet_events_received",
    "Events taken from the broker by a worker.",
    ["type", "handler", "queue"],
)
EVENTS_PROCESSED = Counter(
    "fleet_events_processed",
    "Events a worker finished with, by outcome: handled, duplicate (skipped: it took effect "
    "before), retried, dead_lettered, postponed (rate limit or open breaker).",
    ["type", "handler", "queue", "outcome"],
)
HANDLER_DURATION = Histogram(
    "fleet_handler_duration_seconds",
    "Time of one handler run: one event, or a batch of events in one transaction.",
    ["handler"],
    buckets=_LATENCY_BUCKETS,
)
QUEUE_WAIT = Histogram(
    "fleet_queue_wait_seconds",
    "Time a message waited on the broker between being due and a worker starting it.",
    ["queue"],
    buckets=_LATENCY_BUCKETS,
)
EVENTS_IN_PROGRESS = Gauge(
    "fleet_events_in_progress",
    "Events being handled right now.",
    ["handler"],
    multiprocess_mode="livesum",
)
SCRAPE_ERRORS = Counter(
    "fleet_scrape_errors",
    "Scrape-time readers that failed (their gauges were left out of that scrape), by reader.",
    ["collector"],
)
EVENTS_PER_TRANSACTION = Histogram(
    "fleet_events_per_transaction",
    "Events one transaction (or guarded statement) took at once: the events of one message, or "
    "of a batch of messages taken together (docs/consumption.md).",
    ["handler"],
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000),
)
LAST_EVENT = Gauge(
    "fleet_last_event_timestamp_seconds",
    "Unix time a worker last handled an event of the type (it took effect), for alerts on a type "
    "that stops arriving.",
    ["type"],
    multiprocess_mode="max",  # the latest across pool processes, kept after one exits
)
REDELIVERIES = Counter(
    "fleet_redeliveries",
    "Messages a worker received that the broker had delivered before (a dead worker's, mostly).",
    ["queue"],
)


def count_redelivery(delivery_info: Mapping[str, Any]) -> None:
    """Count a message the broker flags as handed out before: RabbitMQ when it requeued a closed
    channel's unacked messages, Redis when kombu restored an expired lease's or a stopping
    worker's (both set `redelivered` in the delivery info, infra/leases.py)."""
    if delivery_info.get("redelivered") is True:
        REDELIVERIES.labels(str(delivery_info.get("routing_key") or "?")).inc()


class PrometheusRecorder:
    """The dispatcher's recorder (engine/dispatch.py `Recorder`), writing the metrics above."""

    def received(self, event_type: str, handler: str, queue: str, count: int) -> None:
        EVENTS_RECEIVED.labels(event_type, handler, queue).inc(count)

    def waited(self, queue: str, seconds: float) -> None:
        QUEUE_WAIT.labels(queue).observe(max(0.0, seconds))

    def running(self, handler: str, count: int) -> None:
        EVENTS_IN_PROGRESS.labels(handler).inc(count)

    def finished(
        self,
        event_type: str,
        handler: str,
        queue: str,
        *,
        counts: dict[str, int],
        seconds: float,
        running: int,
    ) -> None:
        for outcome, count in counts.items():
            if count:
                EVENTS_PROCESSED.labels(event_type, handler, queue, outcome).inc(count)
        if counts.get("handled"):
            LAST_EVENT.labels(event_type).set(time.time())
        HANDLER_DURATION.labels(handler).observe(seconds)
        EVENTS_IN_PROGRESS.labels(handler).dec(running)

    def committed(self, handler: str, events: int) -> None:
        EVENTS_PER_TRANSACTION.labels(handler).observe(events)


def mark_process_dead(pid: int) -> None:
    """A pool child has exited: drop its live gauges (its counters stay counted)."""
    if os.environ.get(ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class FleetStateCollector(Collector):
    """Gauges read at scrape time from the fleet's stores; `probes` name a reader per gauge, and a
    reader that fails leaves its gauge out (counted in `fleet_scrape_errors_total`)."""

    def __init__(self, probes: Callable[[], dict[str, Callable[[], Any]]]) -> None:
        self._probes = probes

    def collect(self) -> Iterator[Metric]:
        state: dict[str, Any] = {}
        for name, probe in self._probes().items():
            try:
                state[name] = probe()
            except Exception as exc:
                _scrape_failed(f"fleet_state.{name}", exc)
        yield _family(
            "fleet_queue_depth", "Messages waiting in each broker queue.", "queue", state.get("queue_depth")
        )
        yield _family(
            "fleet_queue_oldest_age_seconds",
            "Age of the oldest message waiting in each queue (Redis broker only).",
            "queue",
            state.get("queue_oldest_age"),
        )
        yield _family("fleet_dead_letters", "Dead letters by status.", "status", state.get("dead_letters"))
        yield _family(
            "fleet_dead_letter_oldest_age_seconds",
            "Seconds since the oldest dead letter still waiting for an operator failed for good, per queue.",
            "queue",
            state.get("dead_letter_oldest_age"),
        )
        yield _family(
            "fleet_outbox_backlog", "Follow-up events not yet published.", None, state.get("outbox")
        )
        yield _family(
            "fleet_outbox_oldest_age_seconds",
            "Seconds the oldest follow-up event not yet published has waited in the outbox (0 when empty).",
            None,
            state.get("outbox_oldest_age"),
        )
        yield _family(
            "fleet_workers_online", "Worker processes with a fresh heartbeat.", None, state.get("workers")
        )
        dropped = CounterMetricFamily(
            "fleet_history_dropped",
            "Event history entries workers gave up writing (their events took effect), read from Redis.",
        )
        if (count := state.get("history_dropped")) is not None:
            dropped.add_metric([], float(count))
        yield dropped


class GuardedCollector(Collector):
    """`collector`'s metrics, or none when it fails: one reader down costs its gauges, not the scrape."""

    def __init__(self, name: str, collector: Collector) -> None:
        self._name = name
        self._collector = collector

    def collect(self) -> Iterator[Metric]:
        try:
            metrics = list(self._collector.collect())
        except Exception as exc:
            _scrape_failed(self._name, exc)
            return iter(())
        return iter(metrics)


def _scrape_failed(name: str, exc: Exception) -> None:
    log.warning("metrics: %s left out of this scrape: %s: %s", name, type(exc).__name__, exc)
    SCRAPE_ERRORS.labels(name).inc()


def _family(name: str, documentation: str, label: str | None, values: Any) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label] if label else None)
    if values is None:
        return family
    if label is None:
        family.add_metric([], float(values))
        return family
    for key, value in sorted(dict(values).items()):
        family.add_metric([str(key)], float(value))
    return family


class _ThisProcess(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def scrape_registry(extra: Mapping[str, Collector] | None = None) -> CollectorRegistry:
    """A registry summing every process's samples in the directory, plus `extra` collectors by
    name, each guarded (`GuardedCollector`). They are collected first, so a scrape's own errors
    are counted in the samples it serves."""
    registry = CollectorRegistry()
    for name, collector in (extra or {}).items():
        registry.register(GuardedCollector(name, collector))
    if os.environ.get(ENV):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:  # a one-shot process, or a test's own app: this process's samples only
        registry.register(_ThisProcess())
    return registry
