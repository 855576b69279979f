"""Draining a prefilled queue, and one event per publish call, against bare Celery and Dramatiq:
`python -m bench.drain [--events N] [--repeats 3]`, Redis broker (bench/README.md).

  a. drain: N single-event messages wait on the queue, then a worker starts; timed from the
     worker's start to the last effect. The fleet (`demo.deposit_recorded`, default settings),
     bare Celery (`bench.baseline`, one insert task per message), Dramatiq (2 processes x 8
     threads, bench/dramatiq_baseline.py, the same idempotent insert);
  b. one event per publish call, end to end: a warm worker, N publish calls of one event each
     from 8 threads (the fleet's through its producer, as `fleet.publish`), timed from the first
     publish to the last effect. The fleet against bare Celery and Dramatiq.
Each phase runs `--repeats` times and the median run is reported; exactly-once is checked for
the fleet and Dramatiq after every run.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.baseline import INSERT_DEPOSIT, make_app
from bench.report import Repeated, Throughput, print_throughput
from bench.run import (
    CONCURRENCY,
    Deposits,
    Options,
    Setup,
    account,
    baseline_config,
    deposit,
    fleet_env,
    fleet_settings,
    measured_environment,
    report_problems,
    terminate,
)
from bench.support import BenchError, OtherLoad, Worker, running, wait_for_count
from workers.bootstrap import Runtime

WARM_UP = 200
PRODUCER_THREADS = 8
"""Threads publishing at once in the one-event-per-publish phase, as a web app's would."""

Send = Callable[[str], object]
"""Publishes one event (or task) by its id."""


def drain(
    setup: Setup, deposits: Deposits, label: str, send: Send, start_worker: Callable[[], Worker]
) -> Throughput:
    """Prefill the queue with N one-event messages, start a worker, time it to the last effect."""
    count = setup.options.events
    ids = [f"drain-{n}" for n in range(count)]
    for event_id in ids:
        send(event_id)
    start = time.time()
    with running(start_worker()) as worker:
        load = OtherLoad([worker.pgid])
        first = wait_for_count(deposits.count, 1, worker, what=f"{label} start", interval=0.005)
        done = wait_for_count(deposits.count, count, worker, what=f"{label} drain")
        other = load.cores()
    check(deposits, ids, label)
    result = Throughput(f"{label}: drain", "events", count, done - start, 0.0, other)
    print_throughput(result)
    print(
        f"    first effect {first - start:.2f} s after the worker start, then {count / (done - first):,.0f}/s"
    )
    return result


def one_per_publish(setup: Setup, deposits: Deposits, label: str, send: Send, worker: Worker) -> Throughput:
    """A warm worker; N publish calls of one event each from `PRODUCER_THREADS` threads, timed
    from the first call to the last effect."""
    count = setup.options.events
    ids = [f"single-{n}" for n in range(count)]
    load = OtherLoad([worker.pgid])
    with ThreadPoolExecutor(PRODUCER_THREADS, thread_name_prefix="producer") as producers:
        start = time.time()
        for _ in producers.map(send, ids):
            pass
        published = time.time()
    done = wait_for_count(deposits.count, count, worker, what=f"{label} one per publish")
    other, used = load.cores(), load.ours()
    check(deposits, ids, label)
    result = Throughput(
        f"{label}: one event/publish", "events", count, done - start, published - start, other
    )
    print_throughput(result)
    per_event = {kind: seconds / count * 1e6 for kind, seconds in used.items()}
    print(
        f"    CPU per event: producer {per_event['runner']:,.0f} µs, workers {per_event['workers']:,.0f} µs, "
        f"Redis and PostgreSQL {per_event['services']:,.0f} µs (server-wide: other work's too)"
    )
    return result


def warm(deposits: Deposits, send: Send, worker: Worker, label: str) -> None:
    ids = [f"warm-{n}" for n in range(WARM_UP)]
    for event_id in ids:
        send(event_id)
    wait_for_count(deposits.count, WARM_UP, worker, what=f"{label} warm-up")
    check(deposits, ids, label)


def check(deposits: Deposits, ids: list[str], label: str) -> None:
    if label.startswith("bare Celery"):  # at-least-once only: doubles are noted, not failed on
        report_problems(deposits.problems(ids, ledger=False))
    else:
        deposits.verify(ids, label)
    deposits.truncate()


def run_fleet(setup: Setup, deposits: Deposits) -> tuple[Repeated, Repeated]:
    settings = fleet_settings(setup)
    runtime = Runtime(settings)
    producer = runtime.fleet().producer  # what fleet.publish uses: concurrent calls grouped
    env = {key: value for key, value in fleet_env(settings).items() if key != "FLEET_PREFETCH_MULTIPLIER"}
    args = ["-m", "workers", "worker", "-c", str(CONCURRENCY), "-n", f"bench-drain-{setup.run_id}@%h"]

    def send(event_id: str) -> None:
        producer.publish([deposit(event_id, time.time())])

    def start() -> Worker:
        return Worker("fleet", args, env, setup.log_dir / "fleet-worker.log")

    try:
        return both_phases(setup, deposits, "fleet", send, start)
    finally:
        runtime.fleet().close()


def run_celery(setup: Setup, deposits: Deposits) -> tuple[Repeated, Repeated]:
    config = baseline_config(setup)
    app = make_app(config)
    insert = app.tasks[INSERT_DEPOSIT]
    args = ["-m", "bench.baseline", f"--hostname=bench-drain-baseline-{setup.run_id}@%h"]

    def send(event_id: str) -> None:
        insert.apply_async((account(event_id), 1, event_id, time.time()))

    def start() -> Worker:
        return Worker("baseline", args, config.as_env(), setup.log_dir / "baseline-worker.log")

    return both_phases(setup, deposits, "bare Celery", send, start)


def run_dramatiq(setup: Setup, deposits: Deposits) -> tuple[Repeated, Repeated]:
    env = {
        "BENCH_DRAMATIQ_REDIS_URL": setup.redis_url,
        "BENCH_DRAMATIQ_NAMESPACE": f"bench{setup.run_id}",
        "BENCH_DATABASE_URL": setup.database_url.replace("+psycopg", ""),
    }
    os.environ.update(env)  # the module reads its broker and database when imported, as the CLI does
    baseline: Any = importlib.import_module("bench.dramatiq_baseline")
    args = ["-m", "dramatiq", "bench.dramatiq_baseline", "--queues", baseline.QUEUE]
    args += ["--processes", str(baseline.PROCESSES), "--threads", str(baseline.THREADS)]

    def send(event_id: str) -> None:
        baseline.record_deposit.send("bench", event_id, account(event_id), 1)

    def start() -> Worker:
        return Worker("dramatiq", args, env, setup.log_dir / "dramatiq-worker.log")

    return both_phases(setup, deposits, "Dramatiq", send, start)


def both_phases(
    setup: Setup, deposits: Deposits, label: str, send: Send, start: Callable[[], Worker]
) -> tuple[Repeated, Repeated]:
    """The drain runs, then the one-event-per-publish runs on one warm worker."""
    repeats = range(setup.options.repeats)
    drains = Repeated(tuple(drain(setup, deposits, label, send, start) for _ in repeats))
    with running(start()) as worker:
        warm(deposits, send, worker, label)
        singles = tuple(one_per_publish(setup, deposits, label, send, worker) for _ in repeats)
    return drains, Repeated(singles)


def summary(results: dict[str, Repeated]) -> None:
    print("\nmedian runs, events/s:")
    for name, repeated in results.items():
        runs = ", ".join(f"{run.rate:,.0f}" for run in repeated.runs)
        print(f"  {name:<34} {repeated.median.rate:>9,.0f}   (runs: {runs})")
    rate = {name: repeated.median.rate for name, repeated in results.items()}
    print("ratios:")
    drain_ratio = rate["fleet drain"] / rate["bare Celery drain"]
    print(f"  fleet drain / bare Celery drain          {drain_ratio:6.1f}x (target >= 10x)")
    print(f"  fleet drain / Dramatiq drain             {rate['fleet drain'] / rate['Dramatiq drain']:6.1f}x")
    ratio = rate["fleet one event/publish"] / rate["Dramatiq one event/publish"]
    print(f"  fleet / Dramatiq, one event per publish  {ratio:6.1f}x (target >= 2x)")
    ratio = rate["fleet one event/publish"] / rate["bare Celery one event/publish"]
    print(f"  fleet / bare Celery, one event/publish   {ratio:6.1f}x (target >= 5x)")


def parse_options(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.drain", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5_000, help="messages per phase")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each phase (the median is reported)")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--redis", default="redis://127.0.0.1:6379", help="the Redis server, no database number"
    )
    args = parser.parse_args(argv)
    if min(args.events, args.repeats) <= 0:
        parser.error("--events and --repeats must be positive")
    return Options("redis", args.events, 1.0, 1.0, args.repeats, args.postgres, args.redis.rstrip("/"), "")


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    signal.signal(signal.SIGTERM, terminate)  # a `timeout` or a kill stops the workers too
    print(
        f"fleet drain bench: {options.events} messages a phase, {options.repeats} runs each, Redis broker; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores",
        flush=True,
    )
    try:
        with measured_environment(options) as (setup, deposits):
            results = measure(setup, deposits)
    except BenchError as exc:
        print(f"\nBROKEN: {exc}", file=sys.stderr)
        return 1
    summary(results)
    return 0


def measure(setup: Setup, deposits: Deposits) -> dict[str, Repeated]:
    """Every phase of this module, `setup.options.events` messages each (bench.run calls it too)."""
    fleet_drain, fleet_single = run_fleet(setup, deposits)
    celery_drain, celery_single = run_celery(setup, deposits)
    dramatiq_drain, dramatiq_single = run_dramatiq(setup, deposits)
    return {
        "fleet drain": fleet_drain,
        "bare Celery drain": celery_drain,
        "Dramatiq drain": dramatiq_drain,
        "fleet one event/publish": fleet_single,
        "bare Celery one event/publish": celery_single,
        "Dramatiq one event/publish": dramatiq_single,
    }


if __name__ == "__main__":
    sys.exit(main())
