"""A worker with its metrics port open, and what its `fleet_events_per_transaction` histogram says."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import free_port


def start_with_metrics(fut: Any, tmp_path: Path, env: dict[str, str] | None = None, **options: Any) -> int:
    """Start a worker of `fut` (a FleetUnderTest) serving /metrics; returns the port."""
    port = free_port()
    metrics = {
        "FLEET_WORKER_METRICS_PORT": str(port),
        "FLEET_WORKER_METRICS_HOST": "127.0.0.1",
        "FLEET_METRICS_DIR": str(tmp_path / f"metrics-{port}"),
    }
    fut.start_worker(env={**metrics, **(env or {})}, **options)
    return port


def events_per_transaction(port: int) -> tuple[float, float, float]:
    """fleet_events_per_transaction: (transactions, of them with one event, events)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    count = single = total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "fleet_events_per_transaction_count":
                count += sample.value
            elif sample.name == "fleet_events_per_transaction_bucket" and sample.labels["le"] == "1.0":
                single += sample.value
            elif sample.name == "fleet_events_per_transaction_sum":
                total += sample.value
    return count, single, total


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_samples(text: str) -> Samples:
    """Every sample of a Prometheus text page, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return parse_samples(response.read().decode())


def series(samples: Samples, name: str, **labels: str) -> list[float]:
    """The values of every series of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return [value for (found_name, found), value in samples.items() if found_name == name and wanted <= found]
