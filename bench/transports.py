"""Transports against straight-to-Celery, in one run: `python -m bench.transports`.

Phases, each N `demo.deposit_recorded` events to committed effect (`demo_deposits` rows), with
one fleet worker (concurrency 2) throughout:
  a. straight to Celery: `publisher.publish` in batches of FLEET_BATCH_SIZE;
  b. Redis stream: `XADD MAXLEN ~` in pipelines, while `fleet bridge redis-stream` runs;
  c. Service Bus: the stand-in (tests/support/servicebus_standin, its own process) through the
     SDK's batch API, while `fleet bridge servicebus` runs (peek-lock, one complete per message).
Throughput is N over the time from the first publish until the runner sees the last effect.
Figures only; it exits non-zero only when something is broken (lost or doubled effects).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from functools import partial
from pathlib import Path

from pydantic import SecretStr

from bench.run import Deposits, deposit
from bench.support import BenchError, OtherLoad, Worker, fresh_database, private_redis_db, wait_for_count
from handlers.envelope import Event
from infra.db import make_engine
from infra.settings import Settings
from workers.bootstrap import Runtime

CONCURRENCY = 2
BATCH = 500


def _env(settings: Settings, stream: str, servicebus: str) -> dict[str, str]:
    return {
        "FLEET_SERVICEBUS_CONNECTION_STRING": servicebus,
        "FLEET_SERVICEBUS_QUEUE": settings.servicebus_queue,
        "FLEET_BROKER_URL": settings.broker_url,
        "FLEET_REDIS_URL": settings.redis_url or "",
        "FLEET_DATABASE_URL": settings.database_url,
        "FLEET_QUEUE_PREFIX": settings.queue_prefix,
        "FLEET_KEY_PREFIX": settings.key_prefix,
        "FLEET_REDIS_STREAM": stream,
        "FLEET_LOG_LEVEL": "WARNING",
    }


def _phase(
    label: str,
    publish: Callable[[Sequence[Event]], object],
    prefix: str,
    *,
    count: int,
    deposits: Deposits,
    watched: Worker,
    groups: list[int],
) -> float:
    load = OtherLoad(groups)
    start = time.time()
    ids = []
    for offset in range(0, count, BATCH):
        batch = [deposit(f"{prefix}-{n}", time.time()) for n in range(offset, min(count, offset + BATCH))]
        publish(batch)
        ids += [event.id for event in batch]
    published = time.time()
    done = wait_for_count(deposits.count, count, watched, what=label)
    other = load.cores()
    deposits.verify(ids, label)
    deposits.truncate()
    rate = count / (done - start)
    print(
        f"  {label:<34} {count:>7} events  {rate:>8.0f} events/s end to end  "
        f"(published in {published - start:.2f}s; other load {other:.2f} cores)",
        flush=True,
    )
    return rate


def run(events: int, servicebus_events: int, postgres: str, redis_host: str) -> dict[str, float]:
    log_dir = Path(tempfile.mkdtemp(prefix="fleet-bench-transports-"))
    run_id = uuid.uuid4().hex[:8]
    with ExitStack() as stack:
        database_url = stack.enter_context(fresh_database(postgres))
        redis_url = stack.enter_context(private_redis_db(redis_host))
        port = _free_port()
        standin_args = ["-m", "tests.support.servicebus_standin", "--port", str(port)]
        standin = Worker("servicebus", standin_args, {}, log_dir / "servicebus.log")
        stack.callback(standin.stop)
        _wait_for_port(port, standin)
        servicebus = (
            f"Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=RootManageSharedAccessKey;"
            "SharedAccessKey=standin-key;UseDevelopmentEmulator=true;"
        )
        settings = Settings(
            servicebus_connection_string=SecretStr(servicebus),
            servicebus_queue=f"bench{run_id}",
            broker_url=redis_url,
            redis_url=redis_url,
            database_url=database_url,
            queue_prefix=f"bench{run_id}.",
            key_prefix=f"bench{run_id}",
            redis_stream=f"bench{run_id}.events",
            log_level="WARNING",
        )
        env = _env(settings, settings.redis_stream, servicebus)
        engine = make_engine(database_url)
        stack.callback(engine.dispose)
        deposits = Deposits(engine)
        runtime = Runtime(settings)
        stack.callback(lambda: runtime.fleet().close())
        worker_args = ["-m", "workers", "worker", "-c", str(CONCURRENCY), "-n", f"bench-{run_id}@%h"]
        worker = Worker("worker", worker_args, env, log_dir / "worker.log")
        stack.callback(worker.stop)
        bridge = Worker("bridge", ["-m", "workers", "bridge", "redis-stream"], env, log_dir / "bridge.log")
        stack.callback(bridge.stop)
        sb_args = ["-m", "workers", "bridge", "servicebus"]
        sb_bridge = Worker("sb-bridge", sb_args, env, log_dir / "servicebus-bridge.log")
        stack.callback(sb_bridge.stop)
        fleet = runtime.fleet()
        print(f"fleet transports bench: {events} events per phase; logs in {log_dir}", flush=True)
        groups = [worker.pgid, bridge.pgid, standin.pgid, sb_bridge.pgid]
        sb = fleet.transports.servicebus_publisher.publish
        stream = fleet.transports.redis_stream_producer.publish
        phase = partial(_phase, deposits=deposits, groups=groups)
        phase("warm-up (celery)", fleet.publisher.publish, "warm-c", count=2000, watched=worker)
        phase("warm-up (redis stream)", stream, "warm-s", count=2000, watched=bridge)
        phase("warm-up (servicebus)", sb, "warm-b", count=1000, watched=sb_bridge)
        figures = {
            "celery": phase("straight to Celery", fleet.publisher.publish, "c", count=events, watched=worker),
            "redis-stream": phase("Redis stream -> bridge", stream, "s", count=events, watched=bridge),
            "servicebus": phase(
                "Service Bus stand-in -> bridge", sb, "b", count=servicebus_events, watched=sb_bridge
            ),
        }
    shutil.rmtree(log_dir, ignore_errors=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transports", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--servicebus-events", type=int, default=5_000, help="the stand-in is slower")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379", help="no database number")
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    try:
        figures = run(args.events, args.servicebus_events, args.postgres, args.redis.rstrip("/"))
    except BenchError as exc:
        print(f"BROKEN: {exc}", file=sys.stderr)
        return 1
    print("summary (events/s, end to end): " + ", ".join(f"{k} {v:.0f}" for k, v in figures.items()))
    return 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, process: Worker) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        process.check_alive()
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise BenchError(f"the Service Bus stand-in did not listen on {port}")


if __name__ == "__main__":
    sys.exit(main())
