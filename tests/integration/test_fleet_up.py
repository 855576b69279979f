"""The quick start as a user lives it: `fleet up`, publish from the CLI, look, Ctrl-C."""

from __future__ import annotations

import json
import signal
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import FleetUnderTest
from tests.support.processes import free_port, http_ok, wait_until


def test_fleet_up_runs_worker_beat_and_web_and_stops_cleanly_on_ctrl_c(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    port = free_port()
    fut.env["FLEET_WEB_PORT"] = str(port)
    up = fut.start("up")
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/readyz"), timeout=60, what="the web process ready")
    up.wait_for_log("ready.", timeout=60)

    published = fut.cli(
        "publish",
        "demo.deposit_recorded",
        "--data",
        '{"account": "a", "amount": 2}',
        "--id",
        "quickstart-1",
    )
    assert published.returncode == 0, published.stderr
    assert published.stdout.strip() == "quickstart-1"
    wait_until(lambda: fut.deposits() == {"quickstart-1": 1}, timeout=30, what="the published deposit")

    status = fut.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["workers"] != "none online"
    assert report["dead_letters"] == 0
    assert report["routes"]["demo.deposit_recorded"] == (
        "fleet.demo.record_deposit on fleet.demo, transactional, 5 attempts"
    )
    assert set(report["queues"]) == {
        fut.runtime.settings.queue_name(q) for q in (*fut.runtime.registry.queues(), "fleet.maintenance")
    }
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    # The web process serves the worker's counts too: every process of `fleet up` shares one directory.
    samples = [s for family in text_string_to_metric_families(metrics) for s in family.samples]
    handled = [
        s.value
        for s in samples
        if s.name == "fleet_events_processed_total"
        and s.labels.get("handler") == "fleet.demo.record_deposit"
        and s.labels.get("outcome") == "handled"
    ]
    assert handled == [1.0], metrics
    assert [s.value for s in samples if s.name == "fleet_workers_online"] == [1.0]

    up.process.send_signal(signal.SIGINT)
    assert up.process.wait(timeout=60) == 0
    assert "stopping (SIGINT)" in up.log()
    assert not http_ok(f"http://127.0.0.1:{port}/healthz")


def test_fleet_up_runs_the_bridges_it_is_asked_for(fleet_under_test: FleetUnderTest) -> None:
    fut = fleet_under_test
    port = free_port()
    stream = f"{fut.env['FLEET_KEY_PREFIX']}.events"
    fut.env.update(
        {"FLEET_WEB_PORT": str(port), "FLEET_UP_BRIDGES": "redis-stream", "FLEET_REDIS_STREAM": stream}
    )
    up = fut.start("up")
    up.wait_for_log("ready.", timeout=60)

    published = fut.cli(
        "publish", "demo.deposit_recorded", "--to", "redis-stream", "--data", '{"account": "a", "amount": 1}'
    )
    assert published.returncode == 0, published.stderr
    event_id = published.stdout.strip()
    wait_until(
        lambda: fut.deposits() == {event_id: 1}, timeout=30, what="the deposit sent through the stream"
    )

    up.process.send_signal(signal.SIGINT)
    assert up.process.wait(timeout=60) == 0
    assert "bridge redis-stream" in up.log()
