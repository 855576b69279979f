"""Fleet against bare Celery, on one broker, in one run: `python -m bench.run [--broker amqp]`.

Measures (see bench/README.md):
  a. fleet throughput: N deposit events published in batches, until N `demo_deposits` rows exist;
  b. bare Celery throughput: N no-op tasks (one Redis INCR each, to see them finish);
  c. bare Celery throughput: N tasks that insert one `demo_deposits` row each;
  d. latency at a steady rate, one event (or task) per message: recorded_at - sent_at;
  e. on Redis, bench/drain.py's phases: a prefilled queue of single-event messages drained, and one
     event per publish call end to end, beside bare Celery and Dramatiq (2 processes x 8 threads);
  f. recovery (bench/recovery.py): two workers at default settings, one SIGKILLed mid-drain; the
     seconds from the kill to the last event in effect.
`--tracing export` runs the same with traces exported over OTLP/HTTP to a local receiver
(bench/otlp_sink.py): the runner's publishes and the workers' processing, every span sampled.
`--singles N` adds a throughput phase of N single-event messages; `--fleet-only` skips bare
Celery, the drain and recovery. It only prints figures; it exits non-zero only when something is
broken (a worker died, work stalled, an effect happened twice or not at all).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

import redis
from celery import Celery
from sqlalchemy import Engine, func, select, text

from bench.baseline import INSERT_DEPOSIT, NOOP, BaselineConfig, make_app
from bench.report import (
    LatencyRun,
    Repeated,
    Results,
    Throughput,
    print_latency,
    print_summary,
    print_throughput,
)
from bench.support import (
    BenchError,
    Latency,
    OtherLoad,
    Worker,
    delete_queues,
    fresh_database,
    paced,
    private_redis_db,
    running,
    wait_for_count,
)
from handlers.envelope import Event, new_event
from infra.db import make_engine
from infra.publisher import CeleryPublisher
from infra.schema import dead_letters, demo_deposits, processed_events
from infra.settings import Settings
from workers.bootstrap import Runtime

CONCURRENCY = 2
PREFETCH_MULTIPLIER = 4
WARM_UP_BATCHES = 4  # full messages, so that both pool children run the batch path before timing
WARM_UP_SINGLES = 200  # one-event messages, one-message tasks


@dataclass(frozen=True, slots=True)
class Options:
    broker: str
    events: int
    latency_seconds: float
    rate: float
    repeats: int
    postgres: str
    redis: str
    amqp: str
    drain_events: int = 0
    """Messages per phase of bench.drain, run after the rest on Redis (0: not run)."""
    recovery_events: int = 0
    """Events of the recovery phase (bench.recovery), run last (0: not run)."""
    tracing: str = "off"
    """"export": traces go to a local OTLP receiver (bench/otlp_sink.py)."""
    singles: int = 0
    """Single-event messages in a throughput phase of their own (0: not run)."""
    fleet_only: bool = False
    data_check_compare: bool = False
    """Only the fleet's throughput through the producer, with its data check and without
    (bench/data_check.py)."""

    @property
    def latency_count(self) -> int:
        return max(2, round(self.latency_seconds * self.rate))


@dataclass(frozen=True, slots=True)
class Setup:
    options: Options
    run_id: str
    database_url: str
    redis_url: str
    broker_url: str
    log_dir: Path

    @property
    def broker_is_redis(self) -> bool:
        return self.options.broker == "redis"


class Deposits:
    """The runner's view of the database: counts, arrival times, the exactly-once check."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(demo_deposits)).scalar_one())

    def recorded_at(self) -> dict[str, float]:
        query = select(demo_deposits.c.event_id, demo_deposits.c.recorded_at)
        with self.engine.connect() as connection:
            return {event_id: recorded_at for event_id, recorded_at in connection.execute(query)}

    def truncate(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(text("TRUNCATE demo_deposits, fleet_processed_events RESTART IDENTITY"))

    def problems(self, expected: Collection[str], *, ledger: bool) -> list[str]:
        """What breaks exactly-once: doubled, missing or unknown rows; with `ledger`, dead
        letters and ledger rows that do not match the events one for one."""
        with self.engine.connect() as connection:
            counts = Counter(row[0] for row in connection.execute(select(demo_deposits.c.event_id)))
            letters = connection.execute(select(func.count()).select_from(dead_letters)).scalar_one()
            done = connection.execute(select(func.count()).select_from(processed_events)).scalar_one()
        wanted = set(expected)
        found: list[str] = []
        if doubled := [event_id for event_id, n in counts.items() if n > 1]:
            found.append(f"{len(doubled)} events recorded more than once, e.g. {doubled[:3]}")
        if missing := wanted - counts.keys():
            found.append(f"{len(missing)} events never recorded, e.g. {sorted(missing)[:3]}")
        if unknown := counts.keys() - wanted:
            found.append(f"{len(unknown)} unexpected events recorded, e.g. {sorted(unknown)[:3]}")
        if ledger and letters:
            found.append(f"{letters} dead letters")
        if ledger and done != len(wanted):
            found.append(f"{done} ledger rows for {len(wanted)} events")
        return found

    def verify(self, expected: Collection[str], what: str) -> None:
        if found := self.problems(expected, ledger=True):
            raise BenchError(f"{what}: exactly-once violated: " + "; ".join(found))


def account(event_id: str) -> str:
    return f"acc-{sum(event_id.encode()) % 100}"


# -- fleet -----------------------------------------------------------------------------------


def deposit(event_id: str, sent_at: float) -> Event:
    data = {"account": account(event_id), "amount": 1, "sent_at": sent_at}
    return new_event("demo.deposit_recorded", data, source="bench", id=event_id)


def fleet_settings(setup: Setup) -> Settings:
    """The fleet under test; other `FLEET_*` variables (FLEET_BATCH_SIZE...) still apply."""
    return Settings(
        broker_url=setup.broker_url,
        redis_url=setup.redis_url,
        database_url=setup.database_url,
        queue_prefix=f"bench{setup.run_id}.",
        key_prefix=f"bench{setup.run_id}",
        worker_concurrency=CONCURRENCY,
        prefetch_multiplier=PREFETCH_MULTIPLIER,
        log_level="WARNING",
    )


def fleet_env(settings: Settings) -> dict[str, str]:
    values = {
        "broker_url": settings.broker_url,
        "redis_url": settings.redis_url or "",
        "database_url": settings.database_url,
        "queue_prefix": settings.queue_prefix,
        "key_prefix": settings.key_prefix,
        "worker_concurrency": settings.worker_concurrency,
        "prefetch_multiplier": settings.prefetch_multiplier,
        "batch_size": settings.batch_size,
        "log_level": settings.log_level,
    }
    return {f"FLEET_{name.upper()}": str(value) for name, value in values.items()}


def publish_in_batches(publisher: CeleryPublisher, prefix: str, count: int, batch: int) -> list[str]:
    """Publish `count` events, `batch` to a `publish()` call; each event is built just before."""
    ids: list[str] = []
    for offset in range(0, count, batch):
        end = min(count, offset + batch)
        ids += publisher.publish([deposit(f"{prefix}-{n}", time.time()) for n in range(offset, end)])
    return ids


def run_fleet(setup: Setup, deposits: Deposits) -> tuple[Repeated, LatencyRun]:
    settings = fleet_settings(setup)
    runtime = Runtime(settings)
    args = ["-m", "workers", "worker", "-c", str(CONCURRENCY), "-n", f"bench-fleet-{setup.run_id}@%h"]
    worker = Worker("fleet", args, fleet_env(settings), setup.log_dir / "fleet-worker.log")
    try:
        with running(worker):
            publisher = runtime.fleet().publisher
            warm_up_fleet(publisher, deposits, worker, settings.batch_size)
            runs = [
                fleet_throughput(setup, publisher, deposits, worker, settings.batch_size)
                for _ in range(setup.options.repeats)
            ]
            print(f"  fleet batches: median {Repeated(tuple(runs)).median.rate:,.0f} events/s", flush=True)
            if setup.options.singles:
                singles = replace(setup, options=replace(setup.options, events=setup.options.singles))
                single_runs = [
                    fleet_throughput(singles, publisher, deposits, worker, 1)
                    for _ in range(setup.options.repeats)
                ]
                median = Repeated(tuple(single_runs)).median.rate
                print(f"  fleet single-event messages: median {median:,.0f} events/s", flush=True)
            send = lambda event_id, sent_at: publisher.publish([deposit(event_id, sent_at)])  # noqa: E731
            latencies = []
            for _ in range(setup.options.repeats):
                latencies.append(measure_latency(setup, "fleet", send, deposits, worker))
                deposits.verify(latency_ids(setup.options), "fleet latency")
                deposits.truncate()
            latency = median_by_p99(latencies)
    finally:
        if not setup.broker_is_redis:
            delete_queues(runtime.app)
        runtime.fleet().close()
    return Repeated(tuple(runs)), latency


def warm_up_fleet(publisher: CeleryPublisher, deposits: Deposits, worker: Worker, batch: int) -> None:
    ids = publish_in_batches(publisher, "warm-batch", WARM_UP_BATCHES * batch, batch)
    for n in range(WARM_UP_SINGLES):
        ids += publisher.publish([deposit(f"warm-single-{n}", time.time())])
    wait_for_count(deposits.count, len(ids), worker, what="fleet warm-up")
    deposits.verify(ids, "fleet warm-up")
    deposits.truncate()


def fleet_throughput(
    setup: Setup, publisher: CeleryPublisher, deposits: Deposits, worker: Worker, batch: int
) -> Throughput:
    count = setup.options.events
    load = OtherLoad([worker.pgid])
    start = time.time()
    ids = publish_in_batches(publisher, "tp", count, batch)
    published = time.time()
    done = wait_for_count(deposits.count, count, worker, what="fleet throughput")
    other = load.cores()
    deposits.verify(ids, "fleet throughput")
    deposits.truncate()
    label = f"fleet, {batch} events/message"
    result = Throughput(label, "events", count, done - start, published - start, other)
    print_throughput(result)
    return result


# -- bare Celery -----------------------------------------------------------------------------


def baseline_config(setup: Setup) -> BaselineConfig:
    return BaselineConfig(
        broker_url=setup.broker_url,
        database_url=setup.database_url,
        redis_url=setup.redis_url,
        queue=f"bench{setup.run_id}.baseline",
        counter_key=f"bench{setup.run_id}:noop",
    )


def run_baseline(setup: Setup, deposits: Deposits) -> tuple[Throughput, Throughput, LatencyRun]:
    config = baseline_config(setup)
    app = make_app(config)
    counter = redis.Redis.from_url(setup.redis_url)
    read_counter = lambda: int(counter.get(config.counter_key) or 0)  # noqa: E731
    args = ["-m", "bench.baseline", f"--hostname=bench-baseline-{setup.run_id}@%h"]
    worker = Worker("baseline", args, config.as_env(), setup.log_dir / "baseline-worker.log")
    count = setup.options.events
    try:
        with running(worker):
            noop, insert = app.tasks[NOOP], app.tasks[INSERT_DEPOSIT]
            warm_up_baseline(app, deposits, worker, read_counter)
            counter.delete(config.counter_key)
            no_op = task_throughput(
                app, noop, lambda n: (), read_counter, worker, label="bare Celery no-op", count=count
            )
            insert_args = lambda n: (account(f"tp-{n}"), 1, f"tp-{n}", time.time())  # noqa: E731
            with_db = task_throughput(
                app, insert, insert_args, deposits.count, worker, label="bare Celery + insert", count=count
            )
            report_problems(deposits.problems([f"tp-{n}" for n in range(count)], ledger=False))
            deposits.truncate()
            latencies = []
            for _ in range(setup.options.repeats):
                latencies.append(
                    measure_latency(setup, "bare Celery + insert", send_task(app, insert), deposits, worker)
                )
                report_problems(deposits.problems(latency_ids(setup.options), ledger=False))
                deposits.truncate()
            latency = median_by_p99(latencies)
    finally:
        if not setup.broker_is_redis:
            delete_queues(app)
        counter.close()
    return no_op, with_db, latency


def send_task(app: Celery, task: Any) -> Callable[[str, float], object]:
    def send(event_id: str, sent_at: float) -> None:
        with app.producer_or_acquire() as producer:
            task.apply_async((account(event_id), 1, event_id, sent_at), producer=producer)

    return send


def warm_up_baseline(
    app: Celery, deposits: Deposits, worker: Worker, read_counter: Callable[[], int]
) -> None:
    noop, insert = app.tasks[NOOP], app.tasks[INSERT_DEPOSIT]
    with app.producer_or_acquire() as producer:
        for n in range(WARM_UP_SINGLES):
            noop.apply_async((), producer=producer)
            insert.apply_async((account(f"warm-{n}"), 1, f"warm-{n}", time.time()), producer=producer)
    wait_for_count(read_counter, WARM_UP_SINGLES, worker, what="bare Celery no-op warm-up")
    wait_for_count(deposits.count, WARM_UP_SINGLES, worker, what="bare Celery insert warm-up")
    deposits.truncate()


def task_throughput(
    app: Celery,
    task: Any,
    make_args: Callable[[int], tuple[Any, ...]],
    read: Callable[[], int],
    worker: Worker,
    *,
    label: str,
    count: int,
) -> Throughput:
    """Publish `count` tasks, one message each, and wait until `read()` reaches `count`."""
    load = OtherLoad([worker.pgid])
    start = time.time()
    with app.producer_or_acquire() as producer:
        for n in range(count):
            task.apply_async(make_args(n), producer=producer)
    published = time.time()
    done = wait_for_count(read, count, worker, what=label)
    other = load.cores()
    result = Throughput(f"{label}, 1 task/message", "tasks", count, done - start, published - start, other)
    print_throughput(result)
    return result


def report_problems(found: list[str]) -> None:
    """Bare Celery promises at-least-once, no more: its doubles are noted, not failed on."""
    for problem in found:
        print(f"  note: bare Celery: {problem}", flush=True)


# -- shared ----------------------------------------------------------------------------------


def median_by_p99(runs: list[LatencyRun]) -> LatencyRun:
    """The run with the median p99: one 10-second run swings by a factor of ten on two cores."""
    ranked = sorted(runs, key=lambda run: run.latency.p99)
    chosen = ranked[len(ranked) // 2]
    if len(runs) > 1:
        p99s = ", ".join(f"{run.latency.p99:.1f}" for run in runs)
        print(f"  {chosen.label}: p99 of {len(runs)} runs {p99s} ms; the median run is reported", flush=True)
    return replace(chosen, label=f"{chosen.label} ({len(runs)} runs)" if len(runs) > 1 else chosen.label)


def latency_ids(options: Options) -> list[str]:
    return [f"lat-{n}" for n in range(options.latency_count)]


def measure_latency(
    setup: Setup, label: str, send: Callable[[str, float], object], deposits: Deposits, worker: Worker
) -> LatencyRun:
    """Send one item per call at a steady rate; latency is recorded_at (worker) - sent_at (here)."""
    options = setup.options
    sent: dict[str, float] = {}
    max_lag = 0.0
    load = OtherLoad([worker.pgid])
    for event_id, (_, lag) in zip(
        latency_ids(options), paced(options.latency_count, options.rate), strict=True
    ):
        sent_at = time.time()
        send(event_id, sent_at)
        sent[event_id] = sent_at
        max_lag = max(max_lag, lag)
    wait_for_count(deposits.count, len(sent), worker, what=f"{label} latency")
    other, used = load.cores(), load.ours()
    recorded = deposits.recorded_at()
    in_order = [recorded[event_id] - sent_at for event_id, sent_at in sent.items()]  # as sent
    first, last = min(sent.values()), max(sent.values())
    achieved = (len(sent) - 1) / (last - first)
    tenths = tuple(Latency.of(part).p50 for part in split(in_order, 10))
    cpu_ms = {kind: seconds * 1000 / len(sent) for kind, seconds in used.items()}
    result = LatencyRun(label, Latency.of(in_order), achieved, max_lag * 1000, other, tenths, cpu_ms)
    print_latency(result)
    return result


def split(values: list[float], parts: int) -> list[list[float]]:
    """`values` in `parts` consecutive slices of (nearly) equal length, none empty."""
    size = len(values) / parts
    slices = [values[round(n * size) : round((n + 1) * size)] for n in range(parts)]
    return [part for part in slices if part]


# -- main ------------------------------------------------------------------------------------


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--broker", choices=["redis", "amqp"], default="redis")
    parser.add_argument("--events", type=int, default=20_000, help="events (tasks) per throughput phase")
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="length of the latency phase")
    parser.add_argument(
        "--rate", type=float, default=200.0, help="events (tasks) per second when latency is measured"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="fleet throughput runs, and latency runs of each side (the median is reported)",
    )
    parser.add_argument(
        "--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres", help="an admin URL"
    )
    parser.add_argument(
        "--redis", default="redis://127.0.0.1:6379", help="the Redis server, no database number"
    )
    parser.add_argument(
        "--amqp", default="amqp://guest:guest@127.0.0.1:5672//", help="RabbitMQ, for --broker amqp"
    )
    parser.add_argument(
        "--drain-events",
        type=int,
        default=5_000,
        help="Redis: messages per phase of the drain, one-event-per-publish and Dramatiq phases "
        "(bench/drain.py); 0 skips them",
    )
    parser.add_argument(
        "--recovery-events",
        type=int,
        default=3_000,
        help="events of the recovery phase, a worker SIGKILLed mid-drain (bench/recovery.py); 0 skips it",
    )
    parser.add_argument(
        "--tracing",
        choices=["off", "export"],
        default="off",
        help="export: traces of the runner and the workers to a local OTLP receiver",
    )
    parser.add_argument("--singles", type=int, default=0, help="single-event messages per extra phase")
    parser.add_argument("--fleet-only", action="store_true", help="skip bare Celery, the drain and recovery")
    parser.add_argument(
        "--data-check-compare",
        action="store_true",
        help="only the fleet's batch throughput through the producer, with the data check and "
        "without, in turn (bench/data_check.py)",
    )
    args = parser.parse_args(argv)
    if min(args.events, args.rate, args.latency_seconds, args.repeats) <= 0:
        parser.error("--events, --rate, --latency-seconds and --repeats must be positive")
    return Options(
        broker=args.broker,
        events=args.events,
        latency_seconds=args.latency_seconds,
        rate=args.rate,
        repeats=args.repeats,
        postgres=args.postgres,
        redis=args.redis.rstrip("/"),
        amqp=args.amqp,
        drain_events=max(0, args.drain_events),
        recovery_events=max(0, args.recovery_events),
        tracing=args.tracing,
        singles=max(0, args.singles),
        fleet_only=args.fleet_only,
        data_check_compare=args.data_check_compare,
    )


@contextmanager
def environment(options: Options) -> Iterator[Setup]:
    """A private database, Redis logical database and log directory; the first two are removed
    afterwards, the logs only when the run succeeded."""
    log_dir = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    with fresh_database(options.postgres) as database_url, private_redis_db(options.redis) as redis_url:
        broker_url = redis_url if options.broker == "redis" else options.amqp
        yield Setup(options, uuid.uuid4().hex[:8], database_url, redis_url, broker_url, log_dir)
    shutil.rmtree(log_dir, ignore_errors=True)


@contextmanager
def measured_environment(options: Options) -> Iterator[tuple[Setup, Deposits]]:
    """`environment`, with the reader of its database's deposits."""
    with environment(options) as setup:
        engine = make_engine(setup.database_url)
        try:
            yield setup, Deposits(engine)
        finally:
            engine.dispose()


def code_version() -> str:
    """The commit measured, and whether the work tree differs from it (bench/ aside)."""
    commit = _git("rev-parse", "--short", "HEAD")
    if commit is None:
        return "unknown"
    changed = _git("status", "--porcelain", "--", ".", ":!bench")
    return commit + (" with uncommitted changes" if changed else "")


def _git(*args: str) -> str | None:
    here = Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def run(options: Options) -> Results | None:
    """The results, or None with `--fleet-only` or `--data-check-compare` (the figures were printed
    as they came)."""
    print(
        f"fleet bench: broker {options.broker}, {options.events} items per throughput phase, latency at "
        f"{options.rate:g}/s for {options.latency_seconds:g} s\n"
        f"code {code_version()}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores",
        flush=True,
    )
    with ExitStack() as stack:
        if options.tracing == "export":
            stack.enter_context(exported_traces())
        setup, deposits = stack.enter_context(measured_environment(options))
        print(
            f"database {setup.database_url.rsplit('/', 1)[-1]}, redis {setup.redis_url}, "
            f"worker logs in {setup.log_dir}",
            flush=True,
        )
        if options.data_check_compare:
            from bench import data_check  # it builds on this module: imported once this one is loaded

            print(f"fleet worker (concurrency {CONCURRENCY}), data check on and off:", flush=True)
            data_check.summary(*data_check.measure(setup, deposits))
            return None
        print(f"fleet worker (concurrency {CONCURRENCY}):", flush=True)
        fleet, fleet_latency = run_fleet(setup, deposits)
        if options.fleet_only:
            return None
        print(f"bare Celery worker (concurrency {CONCURRENCY}):", flush=True)
        noop, insert, insert_latency = run_baseline(setup, deposits)
        if setup.broker_is_redis and options.drain_events:
            from bench import drain  # it builds on this module: imported once this one is loaded

            print(f"drain and one event per publish, {options.drain_events} messages a phase:", flush=True)
            drain_options = replace(options, events=options.drain_events)
            drained = drain.measure(replace(setup, options=drain_options), deposits)
            drain.summary(drained)
        if options.recovery_events:
            from bench import recovery

            print(f"recovery, {options.recovery_events} events, a worker SIGKILLed mid-drain:", flush=True)
            recovery_options = replace(options, events=options.recovery_events)
            recovery.recover_once(replace(setup, options=recovery_options), deposits, 0)
    return Results(fleet, noop, insert, fleet_latency, insert_latency)


@contextmanager
def exported_traces() -> Iterator[None]:
    """Traces of this process (the publishes) and of the workers (which inherit the variable)
    exported to a local receiver; what it took is printed at the end."""
    from bench.otlp_sink import OtlpSink
    from infra.tracing import setup as tracing

    sink = OtlpSink()
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.endpoint
    tracing.configure("bench")
    try:
        yield
    finally:
        tracing.shutdown()
        print(f"traces: {sink.requests} OTLP exports, {sink.bytes / 1e6:.1f} MB received", flush=True)
        sink.close()


def terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the cleanups, as Ctrl-C does


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    signal.signal(signal.SIGTERM, terminate)
    try:
        results = run(options)
    except BenchError as exc:
        print(f"\nBROKEN: {exc}\n(the worker logs are kept in the directory named above)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; workers stopped, database and Redis database removed", file=sys.stderr)
        return 130
    if results is not None:
        print_summary(options.broker, options.rate, options.latency_seconds, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
