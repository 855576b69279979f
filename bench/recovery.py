"""Recovery from a worker's SIGKILL: `python -m bench.recovery [--broker redis|amqp] [--events N]
[--repeats 3]` (bench/README.md).

Two fleet workers with every setting at its default (`-c 2`) drain N single-event messages;
when a tenth have taken effect, one worker's whole process group is SIGKILLed while it holds a
batch. Reported: seconds from the kill to the last event taking effect, and how many effects
were doubled or lost (each must be 0). On Redis the killed worker's messages come back once
their lease runs out (`FLEET_VISIBILITY_TIMEOUT`, 20 s); on RabbitMQ when its connection closes.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
from contextlib import suppress

from bench.run import (
    Deposits,
    Options,
    Setup,
    deposit,
    fleet_env,
    fleet_settings,
    measured_environment,
    terminate,
)
from bench.support import BenchError, Worker, running, wait_for_count
from workers.bootstrap import Runtime

WHERE_SETTINGS = {
    f"FLEET_{name}" for name in ("BROKER_URL", "REDIS_URL", "DATABASE_URL", "QUEUE_PREFIX", "KEY_PREFIX")
}
"""The settings the workers get: where things are; everything else at its default."""
KILL_AT = 0.1
"""The share of the events in effect when the worker is killed."""


def recover_once(setup: Setup, deposits: Deposits, run: int) -> float:
    """One run: the seconds from the SIGKILL to the last effect."""
    settings = fleet_settings(setup)
    env = {key: value for key, value in fleet_env(settings).items() if key in WHERE_SETTINGS}
    count = setup.options.events
    ids = [f"recover-{run}-{n}" for n in range(count)]

    def start(name: str) -> Worker:
        args = ["-m", "workers", "worker", "-c", "2", "-n", f"bench-{name}-{setup.run_id}-{run}@%h"]
        return Worker(name, args, env, setup.log_dir / f"recovery-{name}-{run}.log")

    with running(start("survivor")) as survivor, running(start("victim")) as victim:
        for worker in (survivor, victim):
            wait_ready(worker)
        producer = Runtime(settings).fleet().producer
        try:
            for offset in range(0, count, 100):
                producer.publish([deposit(event_id, time.time()) for event_id in ids[offset : offset + 100]])
        finally:
            producer.close()
        wait_for_count(deposits.count, int(count * KILL_AT), survivor, what="the first effects")
        with suppress(ProcessLookupError):
            os.killpg(victim.pgid, signal.SIGKILL)
        killed = time.time()
        done = wait_for_count(deposits.count, count, survivor, what="every event", stall_timeout=120)
    deposits.verify(ids, "fleet")
    deposits.truncate()
    seconds = done - killed
    print(f"  run {run + 1}: all {count} events in effect {seconds:.1f} s after the SIGKILL", flush=True)
    return seconds


def wait_ready(worker: Worker, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while "ready." not in worker.tail(20_000):
        worker.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"{worker.name} worker not ready after {timeout:.0f} s:\n{worker.tail()}")
        time.sleep(0.05)


def parse_options(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__.split("\n")[0])
    parser.add_argument("--broker", choices=["redis", "amqp"], default="redis")
    parser.add_argument("--events", type=int, default=3_000, help="events per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs (the median is reported)")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379", help="the Redis server, no database")
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672//")
    args = parser.parse_args(argv)
    if min(args.events, args.repeats) <= 0:
        parser.error("--events and --repeats must be positive")
    return Options(
        args.broker, args.events, 1.0, 1.0, args.repeats, args.postgres, args.redis.rstrip("/"), args.amqp
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    signal.signal(signal.SIGTERM, terminate)  # a `timeout` or a kill stops the workers too
    print(
        f"fleet recovery bench: {options.events} events a run, {options.repeats} runs, "
        f"{options.broker} broker, default settings; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores",
        flush=True,
    )
    try:
        with measured_environment(options) as (setup, deposits):
            runs = [recover_once(setup, deposits, run) for run in range(options.repeats)]
    except BenchError as exc:
        print(f"\nBROKEN: {exc}", file=sys.stderr)
        return 1
    print(f"median recovery: {statistics.median(runs):.1f} s (target under 30 s); no event doubled or lost")
    return 0


if __name__ == "__main__":
    sys.exit(main())
