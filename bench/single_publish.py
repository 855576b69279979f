"""Single-event publishes from threads: `python -m bench.single_publish --broker redis`.

N `demo.deposit_recorded` events, one per call, from 8 threads: (a) `fleet.publish`, (b) bare
Celery, `apply_async` of a no-op task (its own app, stock settings but for confirmed publishes on
RabbitMQ, as the fleet's). Events per second from the first call to the last return (the broker
holds every event by then; no worker runs), the median of 3 runs each, interleaved, and the CPU
other processes used meanwhile. Figures only; it exits non-zero only when something is broken.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from celery import Celery

import fleet
from bench.support import OtherLoad, delete_queues, private_redis_db
from handlers.registry import Registry
from infra.producer_app import producer_app
from infra.settings import Settings

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


def run_threads(threads: int, count: int, publish_one: Callable[[int], None]) -> float:
    """Seconds `threads` threads take to call `publish_one` for 0..count-1 between them."""
    failures: list[BaseException] = []

    def share(start: int) -> None:
        try:
            for n in range(start, count, threads):
                publish_one(n)
        except BaseException as exc:
            failures.append(exc)

    workers = [threading.Thread(target=share, args=(n,)) for n in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise failures[0]
    return time.perf_counter() - started


def through_fleet(run: str) -> Callable[[int], None]:
    def publish_one(n: int) -> None:
        fleet.publish(
            "demo.deposit_recorded", {"account": "acc-1", "amount": 1}, source="bench", id=f"{run}-f{n}"
        )

    return publish_one


def bare_celery(url: str, queue: str) -> tuple[Celery, Callable[[int], None]]:
    app = Celery("bench", broker=url, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], task_default_queue=queue)
    if not url.startswith("redis"):
        app.conf.broker_transport_options = {"confirm_publish": True}  # durable, as the fleet's sends

    @app.task(name="bench.noop")
    def noop(**kwargs: object) -> None:
        return None

    def publish_one(n: int) -> None:
        event = {"id": f"c{n}", "type": "demo.deposit_recorded", "data": {"account": "acc-1", "amount": 1}}
        noop.apply_async(kwargs={"events": [json.dumps(event)], "attempt": 0})

    return app, publish_one


@contextmanager
def broker(kind: str) -> Iterator[str]:
    if kind == "redis":
        with private_redis_db("redis://127.0.0.1:6379") as url:
            yield url
    else:
        yield AMQP_URL


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--broker", choices=("redis", "amqp"), default="redis")
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    prefix = f"b{uuid.uuid4().hex[:8]}."
    with broker(args.broker) as url:
        os.environ.update({"FLEET_BROKER_URL": url, "FLEET_QUEUE_PREFIX": prefix})
        celery_app, celery_one = bare_celery(url, prefix + "noop")
        rates: dict[str, list[float]] = {"fleet.publish": [], "celery apply_async": []}
        other: list[float] = []
        try:
            for run in range(args.runs):
                for name, one in (
                    ("fleet.publish", through_fleet(f"r{run}")),
                    ("celery apply_async", celery_one),
                ):
                    one(-1)  # connected and warm before the clock starts
                    load = OtherLoad(())
                    seconds = run_threads(args.threads, args.events, one)
                    other.append(load.cores())
                    rates[name].append(args.events / seconds)
                    print(f"run {run + 1} {name:>18}: {args.events / seconds:8.0f} events/s", flush=True)
        finally:
            fleet.close()
            if args.broker == "amqp":
                delete_queues(producer_app(Settings(), Registry()))
                delete_queues(celery_app)
            celery_app.close()
    ours, theirs = (statistics.median(rates[name]) for name in ("fleet.publish", "celery apply_async"))
    shape = f"{args.events} single events from {args.threads} threads"
    print(f"{args.broker}, {shape}, medians of {args.runs} runs:")
    print(f"  fleet.publish       {ours:8.0f} events/s")
    print(f"  celery apply_async  {theirs:8.0f} events/s")
    print(f"  ratio               {ours / theirs:8.2f}x")
    print(f"  other load          {statistics.median(other):8.2f} cores (median over phases; 2 cores here)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
