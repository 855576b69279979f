"""Prometheus metrics under Celery's prefork pool: both children's counts add up exactly."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from handlers.envelope import Event
from tests.integration.conftest import FleetUnderTest
from tests.integration.helpers import deposit, flaky
from tests.support.processes import free_port, wait_until
from workers.web import make_web_app


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(value for (n, found), value in samples.items() if n == name and wanted <= found)


def test_counts_from_both_pool_children_add_up_to_the_events_handled(
    fleet_under_test: FleetUnderTest, tmp_path: Path
) -> None:
    fut = fleet_under_test
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    fut.start_worker(
        concurrency=2,
        env={
            "FLEET_WORKER_METRICS_PORT": str(port),
            "FLEET_WORKER_METRICS_HOST": "127.0.0.1",
            "FLEET_METRICS_DIR": str(metrics_dir),
            "FLEET_CONSUME_BATCH": "10",  # batches of up to 10 messages, so both pool children take some
        },
    )
    originals = [deposit(f"m-{n}") for n in range(600)]
    duplicates = originals[:60]
    stream: list[Event] = originals + duplicates
    for start in range(0, len(stream), 10):  # 66 messages, so both children take some
        fut.fleet.publisher.publish(stream[start : start + 10])
    wait_until(lambda: len(fut.deposits()) == 600, timeout=90, what="600 deposits")

    def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            return _samples(response.read().decode())

    kind = {"type": "demo.deposit_recorded"}
    wait_until(
        lambda: _value(scrape(), "fleet_events_processed_total", **kind, outcome="duplicate") == 60,
        timeout=30,
        what="the duplicates counted",
    )
    samples = scrape()
    assert _value(samples, "fleet_events_processed_total", **kind, outcome="handled") == 600
    assert _value(samples, "fleet_events_received_total", **kind) == 660
    runs = _value(samples, "fleet_handler_duration_seconds_count", handler="fleet.demo.record_deposit")
    assert runs == _value(samples, "fleet_events_per_transaction_count"), (
        "a run: a message, or a batch of them"
    )
    assert 7 <= runs <= 66
    assert _value(samples, "fleet_queue_wait_seconds_count") == 66
    assert _value(samples, "fleet_events_in_progress") == 0
    writers = {path.stem.rsplit("_", 1)[-1] for path in metrics_dir.glob("counter_*.db")}
    assert len(writers) >= 2, f"both pool children should have counted, files: {sorted(writers)}"


def test_the_web_process_reports_dead_letters_workers_and_queues_at_scrape_time(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    fut.start_worker(concurrency=1)
    fut.fleet.publisher.publish([flaky("poison-1", fail_times=99), flaky("poison-2", fail_times=99)])
    wait_until(lambda: len(fut.letters()) == 2, timeout=60, what="two dead letters")

    with TestClient(make_web_app(fut.runtime)) as client:
        samples = _samples(client.get("/metrics").text)
    assert _value(samples, "fleet_dead_letters", status="dead") == 2
    assert _value(samples, "fleet_workers_online") == 1
    queue = fut.runtime.settings.queue_name("fleet.demo")
    assert _value(samples, "fleet_queue_depth", queue=queue) == 0
    assert _value(samples, "fleet_outbox_backlog") == 0
