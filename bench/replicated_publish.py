"""What replica acknowledgement costs a publish: `python -m bench.replicated_publish`.

Starts a Redis master and one replica of its own on free loopback ports (nothing kept on disk),
then publishes N single events, one per call from one thread, through the producer `fleet.publish`
uses, with FLEET_REDIS_MIN_REPLICAS=0 and =1 in turn (interleaved, 3 runs each, medians), in the
same invocation. Prints the median and 99th percentile latency of one call and the events per
second. Figures only; it exits non-zero only when something is broken.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import redis

from handlers.envelope import new_event
from infra.producer import Producer
from infra.settings import Settings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(directory: Path, *args: str) -> tuple[int, subprocess.Popen[bytes]]:
    port = _free_port()
    directory.mkdir(parents=True)
    binary = shutil.which("redis-server") or "redis-server"
    command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory), "--save", ""]
    process = subprocess.Popen([*command, "--appendonly", "no", "--logfile", str(directory / "log"), *args])
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return port, process


def run(settings: Settings, count: int) -> tuple[float, list[float]]:
    producer = Producer(settings)
    run_id = uuid.uuid4().hex[:8]
    latencies = []
    producer.publish([new_event("demo.deposit_recorded", {"account": "a", "amount": 1}, source="bench")])
    started = time.perf_counter()
    for n in range(count):
        event = new_event(
            "demo.deposit_recorded", {"account": "a", "amount": 1}, source="bench", id=f"{run_id}-{n}"
        )
        before = time.perf_counter()
        producer.publish([event])
        latencies.append(time.perf_counter() - before)
    elapsed = time.perf_counter() - started
    producer.close()
    return count / elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        master_port, master = _start(Path(tmp) / "master")
        _, replica = _start(Path(tmp) / "replica", "--replicaof", "127.0.0.1", str(master_port))
        try:
            probe = redis.Redis(port=master_port)
            while probe.info("replication").get("slave0", {}).get("state") != "online":
                time.sleep(0.1)
            url = f"redis://127.0.0.1:{master_port}/0"
            results: dict[int, list[tuple[float, list[float]]]] = {0: [], 1: []}
            for _ in range(args.runs):
                for replicas in (0, 1):
                    settings = Settings(
                        broker_url=url, redis_min_replicas=replicas, queue_prefix=f"b{replicas}"
                    )
                    results[replicas].append(run(settings, args.events))
                    probe.flushdb()
            waits = probe.info("commandstats").get("cmdstat_wait", {}).get("calls", 0)
            print(
                f"{args.runs} x {args.events} single-event publishes each way; WAITs on the master: {waits}"
            )
            for replicas, runs in results.items():
                rate = statistics.median(r for r, _ in runs)
                latencies = sorted(x for _, lat in runs for x in lat)
                p50 = latencies[len(latencies) // 2] * 1000
                p99 = latencies[int(len(latencies) * 0.99)] * 1000
                print(
                    f"FLEET_REDIS_MIN_REPLICAS={replicas}: {rate:,.0f} events/s from one thread, "
                    f"p50 {p50:.2f} ms, p99 {p99:.2f} ms per publish"
                )
        finally:
            for process in (replica, master):
                process.kill()
                process.wait()


if __name__ == "__main__":
    main()
