"""What the benchmark runs on: its own database, Redis logical database and worker processes;
plus waiting, pacing, percentiles and a meter of the CPU other processes take meanwhile."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import redis
from celery import Celery
from kombu import Queue
from sqlalchemy import text

from infra.db import make_engine
from infra.migrate import upgrade

REDIS_LOCK_KEY = "fleet-test-run-lock"  # the key tests/conftest.py takes: bench and tests never share a db
STOP_TIMEOUT = 15.0


class BenchError(Exception):
    """Something is broken (not merely slow): a worker died, work stalled, an effect doubled."""


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new PostgreSQL database, migrated to head; dropped on the way out."""
    name = f"fleet_bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def private_redis_db(host_url: str) -> Iterator[str]:
    """An empty Redis logical database that no test run or other benchmark holds (our lock key is its
    only key), flushed afterwards."""
    token = uuid.uuid4().hex
    for db in range(15, 0, -1):
        client = redis.Redis.from_url(f"{host_url}/{db}")
        if not client.set(REDIS_LOCK_KEY, token, nx=True, ex=3600):
            client.close()
            continue
        if client.dbsize() > 1:  # unlocked but in use (leftovers or a careless user): leave it be
            client.delete(REDIS_LOCK_KEY)
            client.close()
            continue
        try:
            yield f"{host_url}/{db}"
        finally:
            if client.get(REDIS_LOCK_KEY) == token.encode():
                client.flushdb()
            client.close()
        return
    raise BenchError("no free Redis logical database among 1-15")


class Worker:
    """A worker command in its own process group, output to a log file; stopped group-wide."""

    def __init__(self, name: str, args: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, *args],
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pgid(self) -> int:
        return self.process.pid  # the leader of its own session and process group

    def alive(self) -> bool:
        return self.process.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise BenchError(f"{self.name} worker exited with {self.process.returncode}:\n{self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """SIGTERM to the group (warm shutdown), SIGKILL to whatever is left after a while."""
        if self.alive():
            _signal_group(self.process.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_TIMEOUT)
        _signal_group(self.process.pid, signal.SIGKILL)  # the main process if it hung, stray children
        self.process.wait()
        self._log.close()


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, signum)


@contextmanager
def running(worker: Worker) -> Iterator[Worker]:
    try:
        yield worker
    finally:
        worker.stop()


def wait_for_count(
    read: Callable[[], int],
    target: int,
    worker: Worker,
    *,
    what: str,
    interval: float = 0.02,
    stall_timeout: float = 60.0,
) -> float:
    """Poll `read()` until it reaches `target`; returns `time.time()` when it was first seen there.

    Fails when the worker dies or the count stops moving for `stall_timeout` seconds.
    """
    last, stalled_at = -1, time.monotonic() + stall_timeout
    while True:
        value = read()
        if value >= target:
            return time.time()
        if value != last:
            last, stalled_at = value, time.monotonic() + stall_timeout
        worker.check_alive()
        if time.monotonic() > stalled_at:
            raise BenchError(f"{what}: stuck at {value}/{target} for {stall_timeout:.0f}s\n{worker.tail()}")
        time.sleep(interval)


def paced(count: int, rate: float) -> Iterator[tuple[int, float]]:
    """Yield 0..count-1 at `rate` per second against fixed deadlines (no drift), with each
    step's lateness in seconds."""
    start = time.perf_counter()
    for index in range(count):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        yield index, max(0.0, time.perf_counter() - due)


@dataclass(frozen=True, slots=True)
class Latency:
    count: int
    p50: float
    p90: float
    p99: float
    max: float
    """Milliseconds."""

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        ordered = sorted(value * 1000 for value in seconds)
        return cls(
            count=len(ordered),
            p50=percentile(ordered, 50),
            p90=percentile(ordered, 90),
            p99=percentile(ordered, 99),
            max=ordered[-1],
        )


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending, non-empty sequence."""
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


SERVICES = frozenset({"postgres", "redis-server", "beam.smp", "epmd", "erl_child_setup", "inet_gethost"})


@dataclass(frozen=True, slots=True)
class _CpuSample:
    busy: int
    """user + nice + system jiffies of the whole machine"""
    by_process: dict[int, int]
    """jiffies of each live process of ours (this one, the workers' groups) or of our services"""
    kinds: dict[int, str]
    """which each of those processes is: runner, workers or services"""


class OtherLoad:
    """CPU that processes other than the benchmark's (and its services') used during a phase, in
    cores: another job on a shared machine skews every figure, so the runner says so."""

    def __init__(self, groups: Collection[int]) -> None:
        self._groups = set(groups)
        self._since = time.monotonic()
        self._start = self._sample()

    def cores(self) -> float:
        """Cores used by other processes since this meter was made; NaN where /proc is missing."""
        end, seconds = self._sample(), time.monotonic() - self._since
        if self._start is None or end is None or seconds <= 0:
            return math.nan
        ours = sum(jiffies - self._start.by_process.get(pid, 0) for pid, jiffies in end.by_process.items())
        other = max(0, end.busy - self._start.busy - ours)
        return other / (os.sysconf("SC_CLK_TCK") * seconds)

    def ours(self) -> dict[str, float]:
        """CPU seconds the runner, the workers and the services each used since this meter was made
        (a process that ended meanwhile is not counted)."""
        end = self._sample()
        used = {"runner": 0.0, "workers": 0.0, "services": 0.0}
        if self._start is None or end is None:
            return {kind: math.nan for kind in used}
        for pid, jiffies in end.by_process.items():
            used[end.kinds[pid]] += (jiffies - self._start.by_process.get(pid, 0)) / os.sysconf("SC_CLK_TCK")
        return used

    def _sample(self) -> _CpuSample | None:
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        except OSError:
            return None
        ours = list(self._ours())
        return _CpuSample(
            sum(int(fields[i]) for i in (0, 1, 2)),
            {pid: jiffies for pid, jiffies, _ in ours},
            {pid: kind for pid, _, kind in ours},
        )

    def _ours(self) -> Iterator[tuple[int, int, str]]:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
            pid = int(entry.name)
            jiffies = int(rest[11]) + int(rest[12])
            if pid == os.getpid():
                yield pid, jiffies, "runner"
            elif int(rest[2]) in self._groups:
                yield pid, jiffies, "workers"
            elif name in SERVICES:
                yield pid, jiffies, "services"


def delete_queues(app: Celery, also: Sequence[Queue] = ()) -> None:
    """RabbitMQ keeps durable queues and exchanges after the run: remove the ones `app` declares,
    and `also` (queues another process declared on the same broker). Celery's view of the queues
    is used, where each has the exchange it is bound to (configured `Queue`s often name none:
    Celery then binds them to its default exchange, named after the default queue)."""
    queues = [*app.amqp.queues.values(), *also]
    targets = [("queue", queue.name) for queue in queues]
    targets += [("exchange", name) for name in sorted({queue.exchange.name for queue in queues})]
    with app.connection_for_write() as connection:
        for kind, name in targets:
            channel: Any = connection.channel()
            try:
                if kind == "queue":
                    channel.queue_delete(name)
                else:
                    channel.exchange_delete(name)
            except Exception as exc:  # never declared: that channel is closed, the next is new
                print(f"  note: could not delete {kind} {name}: {exc}", flush=True)
            else:
                channel.close()
