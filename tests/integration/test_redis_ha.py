"""The fleet on a replicated Redis: through Sentinel with its master killed mid-run, and over TLS.

Broker and coordination store both on the Redis the test starts (never the shared one), worker
processes as in production, effects counted in PostgreSQL.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import Engine

from handlers.errors import PublishFailed
from infra.producer import Producer
from infra.redis_clients import NotReplicated
from infra.settings import Settings
from tests.integration.conftest import FleetUnderTest
from tests.integration.helpers import deposit
from tests.support.ingress import start_web
from tests.support.processes import wait_until
from tests.support.redis_servers import (
    MASTER_GROUP,
    make_test_ca,
    sentinel_group,
    start_redis,
    tls_redis,
    wait_for_failover,
)

pytestmark = pytest.mark.integration


def _env(url: str, postgres_url: str, **extra: str) -> dict[str, str]:
    return {
        "FLEET_BROKER_URL": url,
        "FLEET_REDIS_URL": url,
        "FLEET_DATABASE_URL": postgres_url,
        "FLEET_QUEUE_PREFIX": "ha",
        "FLEET_KEY_PREFIX": "ha",
        "FLEET_VISIBILITY_TIMEOUT": "10",  # what a dead master's promoted copy holds comes back soon
        "FLEET_LOG_LEVEL": "INFO",
        **extra,
    }


@pytest.fixture
def fleet_on(engine: Engine, tmp_path: Path) -> Iterator[list[FleetUnderTest]]:
    made: list[FleetUnderTest] = []
    yield made
    for fut in made:
        for process in fut.processes:
            process.kill()  # the Redis under it is gone: a warm shutdown would wait on it


class Publishing(threading.Thread):
    """Publishes one event at a time through the producer fleet.publish uses, noting which
    were acknowledged and which refused."""

    def __init__(self, producer: Producer) -> None:
        super().__init__(daemon=True)
        self.producer = producer
        self.acknowledged: list[tuple[str, float]] = []
        self.refused: list[tuple[str, str]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopped.is_set():
            event = deposit(f"ha-{n}")
            n += 1
            try:
                self.producer.publish([event])
            except PublishFailed as exc:
                self.refused.append((event.id, str(exc)))
                time.sleep(0.05)
            else:
                self.acknowledged.append((event.id, time.monotonic()))
                time.sleep(0.005)

    def acknowledged_since(self, moment: float) -> int:
        return sum(1 for _, at in self.acknowledged if at > moment)


def test_with_replica_acknowledgement_every_acknowledged_event_takes_effect_once_across_a_failover(
    fleet_on: list[FleetUnderTest], engine: Engine, postgres_url: str, tmp_path: Path
) -> None:
    with sentinel_group(tmp_path / "redis", replicas=2, sentinels=1) as group:
        env = _env(
            group.url,
            postgres_url,
            FLEET_REDIS_SENTINEL_MASTER=MASTER_GROUP,
            FLEET_REDIS_MIN_REPLICAS="1",
            FLEET_PUBLISH_TIMEOUT="2",
        )
        fut = FleetUnderTest(env, engine, tmp_path)
        fleet_on.append(fut)
        worker = fut.start_worker(concurrency=2)
        producer = Producer(fut.runtime.settings)
        publishing = Publishing(producer)
        publishing.start()
        try:
            wait_until(lambda: len(fut.deposits()) >= 50, timeout=30, what="events flowing")
            old_port = group.master.port
            group.master.kill()
            killed_at = time.monotonic()
            new_port = wait_for_failover(group, old_port)
            promoted_at = time.monotonic()
            wait_until(
                lambda: publishing.acknowledged_since(promoted_at) >= 100,
                timeout=30,
                what="publishes acknowledged by the promoted master",
            )
        finally:
            publishing.stopped.set()
            publishing.join(10)
        first_after = min(at for _, at in publishing.acknowledged if at > killed_at)
        acknowledged = {event_id for event_id, _ in publishing.acknowledged}
        try:
            wait_until(
                lambda: acknowledged <= set(fut.deposits()), timeout=60, what="every acknowledged deposit"
            )
        except AssertionError:
            missing = sorted(acknowledged - set(fut.deposits()))
            raise AssertionError(
                f"acknowledged, never took effect: {missing[:20]} ({len(missing)})"
            ) from None
        counts = fut.deposits()
        assert max(counts.values()) == 1, [k for k, v in counts.items() if v > 1]
        assert new_port != old_port
        assert worker.alive(), "the worker rode out the failover"
        print(
            f"\nfailover: {len(acknowledged)} acknowledged, {len(publishing.refused)} refused, "
            f"promoted {promoted_at - killed_at:.1f} s after the kill, first acknowledgement "
            f"{first_after - killed_at:.1f} s after it"
        )
        producer.close()
        fut.fleet.close()


def test_a_publish_no_replica_confirms_is_refused(tmp_path: Path, postgres_url: str) -> None:
    master = start_redis(tmp_path / "lonely")
    try:
        settings = Settings(
            broker_url=f"redis://127.0.0.1:{master.port}/0",
            database_url=postgres_url,
            redis_min_replicas=1,
            redis_replica_timeout=0.2,
            queue_prefix="ha",
        )
        producer = Producer(settings)
        with pytest.raises(PublishFailed) as refused:
            producer.publish([deposit("lonely-1")])
        assert isinstance(refused.value.__cause__, NotReplicated)
        assert refused.value.sent == ()
        producer.close()
    finally:
        master.kill()


def test_a_fleet_on_redis_over_tls_with_client_certificates_runs_every_event_once(
    fleet_on: list[FleetUnderTest], engine: Engine, postgres_url: str, tmp_path: Path
) -> None:
    ca = make_test_ca(tmp_path / "ca")
    with tls_redis(tmp_path / "tls", ca) as server:
        env = _env(
            f"rediss://127.0.0.1:{server.port}/0",
            postgres_url,
            FLEET_REDIS_TLS_CA=str(ca.ca),
            FLEET_REDIS_TLS_CERT=str(ca.client_cert),
            FLEET_REDIS_TLS_KEY=str(ca.client_key),
        )
        fut = FleetUnderTest(env, engine, tmp_path)
        fleet_on.append(fut)
        fut.start_worker(concurrency=2)
        producer = Producer(fut.runtime.settings)
        events = [deposit(f"tls-{n}") for n in range(200)]
        for start in range(0, 200, 10):
            producer.publish(events[start : start + 10])
        wait_until(lambda: len(fut.deposits()) == 200, timeout=60, what="200 deposits over TLS")
        assert max(fut.deposits().values()) == 1
        assert fut.letters() == []
        producer.close()
        fut.fleet.close()


def test_the_ingress_answers_503_until_a_replica_confirms_and_202_once_one_does(
    fleet_on: list[FleetUnderTest], engine: Engine, postgres_url: str, tmp_path: Path
) -> None:
    master = start_redis(tmp_path / "master")
    replica = None
    try:
        url = f"redis://127.0.0.1:{master.port}/0"
        # the replicas' default time to confirm: 0.5 s proved too short on a loaded machine
        env = _env(url, postgres_url, FLEET_REDIS_MIN_REPLICAS="1")
        fut = FleetUnderTest(env, engine, tmp_path)
        fleet_on.append(fut)
        _, base = start_web(fut)
        created = fut.cli("keys", "create", "tests", "--type", "demo.*")
        assert created.returncode == 0, created.stderr
        headers = {
            "Authorization": f"Bearer {created.stdout.strip()}",
            "Content-Type": "application/cloudevents+json",
        }

        def post(event_id: str) -> httpx.Response:
            event = {"specversion": "1.0", "id": event_id, "source": "t", "type": "demo.deposit_recorded"}
            event["data"] = {"account": "a", "amount": 1}  # type: ignore[assignment]
            return httpx.post(f"{base}/events", content=json.dumps(event), headers=headers, timeout=10)

        refused = post("no-replica")
        assert refused.status_code == 503, refused.text
        replica = start_redis(tmp_path / "replica", "--replicaof", "127.0.0.1", str(master.port))
        probe = redis.Redis(port=master.port)
        wait_until(
            lambda: probe.info("replication").get("slave0", {}).get("state") == "online",
            timeout=20,
            what="the replica online",
        )
        accepted = post("with-replica")
        assert accepted.status_code == 202, accepted.text
        assert probe.info("commandstats")["cmdstat_wait"]["calls"] >= 2
        probe.close()
        fut.fleet.close()
    finally:
        for fut in fleet_on:
            for process in fut.processes:
                process.kill()
        fleet_on.clear()
        for server in (replica, master):
            if server is not None:
                server.kill()
