"""A fleet per test: settings of its own, worker processes, and the same tests on both brokers."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, select

from infra.rabbitmq_queues import POISON_SUFFIX
from infra.schema import dead_letters, demo_deposits
from infra.settings import Settings
from tests.support.processes import FleetProcess
from tests.support.services import AMQP_URL, require
from workers.bootstrap import Runtime

pytestmark = pytest.mark.integration


@pytest.fixture(params=["redis", "amqp"])
def broker_url(request: pytest.FixtureRequest, redis_url: str) -> str:
    if request.param == "amqp":
        require("rabbitmq")
        return AMQP_URL
    return redis_url


@pytest.fixture
def rabbitmq_queue_type(request: pytest.FixtureRequest) -> str:
    """`classic` unless a test asks for quorum queues too (`EVERY_BROKER`)."""
    return str(getattr(request, "param", "classic"))


EVERY_BROKER = pytest.mark.parametrize(
    ("broker_url", "rabbitmq_queue_type"),
    [("redis", "classic"), ("amqp", "classic"), ("amqp", "quorum")],
    ids=["redis", "amqp", "amqp-quorum"],
    indirect=True,
)
"""For the delivery guarantees: Redis, and RabbitMQ with classic and with quorum queues."""


@pytest.fixture
def fleet_env(
    broker_url: str, rabbitmq_queue_type: str, redis_url: str, postgres_url: str, engine: Engine
) -> dict[str, str]:
    run = uuid.uuid4().hex[:8]
    return {
        "FLEET_BROKER_URL": broker_url,
        "FLEET_RABBITMQ_QUEUE_TYPE": rabbitmq_queue_type,
        "FLEET_REDIS_URL": redis_url,
        "FLEET_DATABASE_URL": postgres_url,
        "FLEET_QUEUE_PREFIX": f"t{run}",  # no separator: the fleet adds its own (t1234.fleet.demo)
        "FLEET_KEY_PREFIX": f"t{run}",
        "FLEET_VISIBILITY_TIMEOUT": "10",  # a dead worker's messages come back within seconds
        "FLEET_ETA_MAX": "5",
        "FLEET_LOG_LEVEL": "INFO",
    }


class FleetUnderTest:
    """The fleet as a test drives it: a runtime to publish and look with, and its processes."""

    def __init__(self, env: dict[str, str], engine: Engine, logs: Path) -> None:
        self.env = env
        self.engine = engine
        self.logs = logs
        self.runtime = Runtime(Settings(**{k.removeprefix("FLEET_").lower(): v for k, v in env.items()}))
        self.processes: list[FleetProcess] = []

    @property
    def fleet(self) -> Any:
        return self.runtime.fleet()

    @property
    def redis(self) -> redis.Redis:
        return self.fleet.redis  # type: ignore[no-any-return]

    def runtime_env(self, env: dict[str, str] | None = None) -> dict[str, str]:
        return {**os.environ, **self.env, **(env or {})}

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run `fleet <args>` as a user would, with this fleet's settings."""
        return subprocess.run(
            [sys.executable, "-m", "workers", *args],
            input=stdin,
            env=self.runtime_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def start(self, *args: str, env: dict[str, str] | None = None) -> FleetProcess:
        full_env = self.runtime_env(env)
        name = f"{args[0]}-{len(self.processes)}"
        process = FleetProcess(list(args), full_env, self.logs / f"{name}.log", cwd=self.logs)
        self.processes.append(process)
        return process

    def start_worker(self, concurrency: int = 2, env: dict[str, str] | None = None) -> FleetProcess:
        # A name of this run's own: on RabbitMQ each worker holds an exclusive queue named after it,
        # which a test run beside this one, on the same broker, must not collide with.
        name = f"w{len(self.processes)}-{self.env['FLEET_KEY_PREFIX']}@%h"
        worker = self.start("worker", "-c", str(concurrency), "-n", name, env=env)
        worker.wait_for_log("ready.", timeout=60)
        return worker

    def deposits(self) -> Counter[str]:
        with self.engine.connect() as connection:
            return Counter(row[0] for row in connection.execute(select(demo_deposits.c.event_id)))

    def letters(self) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(select(dead_letters).order_by(dead_letters.c.id)))

    def close(self) -> None:
        for process in self.processes:
            process.stop()
        if not self.runtime.settings.broker_is_redis:
            self._delete_queues_and_exchanges()
        self.fleet.close()

    def _delete_queues_and_exchanges(self) -> None:
        with self.runtime.app.connection_for_write() as connection:
            # Celery's view of the queues: their exchange (the default one, named after the
            # default queue) filled in, which the configured Queue objects leave empty
            for queue in self.runtime.app.amqp.queues.values():
                doomed = (
                    ("queue_delete", queue.name),
                    ("queue_delete", queue.name + POISON_SUFFIX),  # quorum queues' (never declared else)
                    ("exchange_delete", queue.exchange.name),
                )
                for delete, name in doomed:
                    channel = connection.channel()  # a failed delete (never declared) closes its channel
                    with contextlib.suppress(Exception):
                        getattr(channel, delete)(name)


@pytest.fixture
def fleet_under_test(fleet_env: dict[str, str], engine: Engine, tmp_path: Path) -> Iterator[FleetUnderTest]:
    under_test = FleetUnderTest(fleet_env, engine, tmp_path)
    yield under_test
    under_test.close()


@pytest.fixture
def console_runtime(fleet_under_test: FleetUnderTest, redis_url: str, postgres_url: str) -> Iterator[Runtime]:
    """The web process's runtime for this fleet: its queues, broker and keys, and the console's users."""
    from tests.integration.test_console_access import console_runtime_of  # it imports this module

    runtime = console_runtime_of(fleet_under_test, redis_url, postgres_url)
    yield runtime
    runtime.fleet().close()
