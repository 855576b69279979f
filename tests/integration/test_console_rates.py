"""The queues page's "in / min": events published to a queue (by the blocking publisher and by
the web ingress's), counted in Redis, shown as a rate beside the queue's depth (no worker runs,
so they stay queued)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from tests.integration.helpers import deposit
from tests.integration.test_console_access import client_for, console_settings, log_in
from tests.support.processes import wait_until
from workers.bootstrap import Runtime
from workers.console.overview import RATE_WINDOW

pytestmark = pytest.mark.integration
ROW = re.compile(
    r"<tr><td>([^<]+)</td><td class=\"num\">(\d+)</td>\s*<td class=\"num\">[^<]*</td>\s*"
    r"<td class=\"num\">([\d.]+)</td>"
)
EVENTS = 30


@pytest.fixture
def runtime(redis_url: str, postgres_url: str, engine: Engine) -> Iterator[Runtime]:
    run = uuid.uuid4().hex[:8]
    runtime = Runtime(
        console_settings(redis_url, postgres_url, queue_prefix=f"r{run}.", key_prefix=f"r{run}")
    )
    yield runtime
    runtime.fleet().close()


def test_the_queues_page_shows_the_rate_events_arrive_at_each_queue(runtime: Runtime) -> None:
    queue = runtime.settings.queue_prefix + runtime.registry.route_for("demo.deposit_recorded").queue
    runtime.fleet().publisher.publish([deposit(f"rate-{n}") for n in range(EVENTS)])
    asyncio.run(runtime.fleet().loop_publisher.publish([deposit(f"web-{n}") for n in range(EVENTS)]))
    client = client_for(runtime)
    log_in(client, "bob")

    def shown() -> tuple[int, float]:
        page = client.get("/console/queues")
        assert page.status_code == 200, page.text
        rows = {name: (int(depth), float(rate)) for name, depth, rate in ROW.findall(page.text)}
        assert queue in rows, page.text
        return rows[queue]

    expected = 2 * EVENTS * 60 / RATE_WINDOW
    wait_until(lambda: shown()[1] >= expected - 0.1, timeout=10, what="the ingress's count")  # counted after
    depth, rate = shown()
    assert depth >= 1
    assert rate == pytest.approx(expected, abs=0.1)
