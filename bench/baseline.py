"""Bare Celery, the benchmark's yardstick: one message per task, no fleet code at all.

Worker settings match the fleet's worker (JSON, late acknowledgement, prefetch multiplier 4,
prefork pool, concurrency 2, no mingle, no gossip); everything else is stock Celery. Two tasks:

- `bench.noop` does nothing but `INCR` a Redis counter, so the runner can see it finish;
- `bench.insert_deposit` inserts one `demo_deposits` row with SQLAlchemy Core in its own
  transaction, `recorded_at` taken just before commit, like the fleet's deposit book.

Configured from `BENCH_*` environment variables (see `BaselineConfig.from_env`); the runner
builds its own app with `make_app` to publish. Run a worker with `python -m bench.baseline`.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import redis
from celery import Celery
from kombu import Queue
from sqlalchemy import Engine, column, create_engine, insert, table
from sqlalchemy.engine import make_url

NOOP = "bench.noop"
INSERT_DEPOSIT = "bench.insert_deposit"

DEPOSITS = table(
    "demo_deposits",
    column("account"),
    column("amount"),
    column("event_id"),
    column("recorded_at"),
)


@dataclass(frozen=True, slots=True)
class BaselineConfig:
    broker_url: str
    database_url: str
    redis_url: str
    queue: str
    counter_key: str

    @classmethod
    def from_env(cls) -> BaselineConfig:
        return cls(
            broker_url=os.environ["BENCH_BROKER_URL"],
            database_url=os.environ["BENCH_DATABASE_URL"],
            redis_url=os.environ["BENCH_REDIS_URL"],
            queue=os.environ["BENCH_QUEUE"],
            counter_key=os.environ["BENCH_COUNTER_KEY"],
        )

    def as_env(self) -> dict[str, str]:
        return {
            "BENCH_BROKER_URL": self.broker_url,
            "BENCH_DATABASE_URL": self.database_url,
            "BENCH_REDIS_URL": self.redis_url,
            "BENCH_QUEUE": self.queue,
            "BENCH_COUNTER_KEY": self.counter_key,
        }


class Connections:
    """A database engine and a Redis client per process, made on first use (in the pool child)."""

    def __init__(self, config: BaselineConfig) -> None:
        self._config = config
        self._pid = 0
        self._engine: Engine | None = None
        self._redis: redis.Redis | None = None

    def engine(self) -> Engine:
        self._check_pid()
        if self._engine is None:
            url = make_url(self._config.database_url).set(drivername="postgresql+psycopg")
            self._engine = create_engine(url, pool_size=1)
        return self._engine

    def redis(self) -> redis.Redis:
        self._check_pid()
        if self._redis is None:
            self._redis = redis.Redis.from_url(self._config.redis_url)
        return self._redis

    def _check_pid(self) -> None:
        if self._pid != os.getpid():  # never use a connection made before a fork
            self._pid, self._engine, self._redis = os.getpid(), None, None


def make_app(config: BaselineConfig) -> Celery:
    app = Celery("bench-baseline", set_as_current=False)
    app.conf.update(
        broker_url=config.broker_url,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=4,
        worker_concurrency=2,
        worker_pool="prefork",
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        task_queues=[Queue(config.queue, routing_key=config.queue)],
        task_default_queue=config.queue,
    )
    connections = Connections(config)

    @app.task(name=NOOP)
    def noop() -> None:
        connections.redis().incr(config.counter_key)

    @app.task(name=INSERT_DEPOSIT)
    def insert_deposit(account: str, amount: int, event_id: str, sent_at: float) -> None:
        del sent_at  # carried like the fleet's events carry it; the runner keeps its own copy
        with connections.engine().begin() as connection:
            row = {"account": account, "amount": amount, "event_id": event_id, "recorded_at": time.time()}
            connection.execute(insert(DEPOSITS).values(row))

    return app


def main(argv: list[str]) -> None:
    """Run a worker: `python -m bench.baseline [extra celery worker options]`."""
    config = BaselineConfig.from_env()
    app = make_app(config)
    base = [
        "worker",
        "--loglevel=WARNING",
        "--without-mingle",
        "--without-gossip",
        "--pool=prefork",
        "--concurrency=2",
        f"--queues={config.queue}",
    ]
    app.worker_main([*base, *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
