"""The console keeps no history in memory: its process stays flat while 100,000 events pass and
its pages are read all the while (every figure comes from the database, Redis and the broker)."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import func, select

from handlers.envelope import new_event
from infra.schema import demo_deposits
from tests.e2e.conftest import ConsoleUnderTest
from tests.integration.conftest import FleetUnderTest

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

EVENTS = 100_000
PAGES = ("/console/?partial=1", "/console/queues", "/console/events", "/console/dead-letters")
ALLOWED_GROWTH_MB = 40.0  # generous: allocator noise and caches, far below what 100k entries would hold


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def read_pages(console: ConsoleUnderTest) -> list[float]:
    """Read each page once; the process's RSS after each."""
    samples = []
    for path in PAGES:
        request = urllib.request.Request(console.url + path, headers={"X-Test-User": "memory-test"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200, path
            response.read()
        samples.append(rss_mb(console.process.pid))
    return samples


def test_console_memory_stays_flat_while_100k_events_pass(
    fleet_under_test: FleetUnderTest, console: ConsoleUnderTest
) -> None:
    fut = fleet_under_test
    fut.start_worker()
    for _ in range(5):  # warm up: imports, templates, connection pools
        read_pages(console)
    start = rss_mb(console.process.pid)

    events = [
        new_event(
            "demo.deposit_recorded", {"account": f"a-{n % 50}", "amount": 1}, source="memory", id=f"m-{n}"
        )
        for n in range(EVENTS)
    ]
    fut.fleet.publisher.publish(events)  # 500 to a broker message
    del events

    def handled() -> int:
        with fut.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(demo_deposits)).scalar_one())

    samples, deadline = [start], time.monotonic() + 900
    while (done := handled()) < EVENTS:
        assert time.monotonic() < deadline, f"only {done} of {EVENTS} handled"
        samples += read_pages(console)
        time.sleep(0.2)
    samples += read_pages(console)
    end = rss_mb(console.process.pid)
    print(
        f"\nconsole RSS while {EVENTS} events passed: start {start:.1f} MB, peak {max(samples):.1f} MB, "
        f"end {end:.1f} MB, {len(samples)} samples (one after each page read)"
    )
    assert max(samples) - start < ALLOWED_GROWTH_MB
    assert end - start < ALLOWED_GROWTH_MB
