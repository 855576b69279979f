"""What checking `data` at the door costs the batch path: `python -m bench.run --data-check-compare`.

The fleet's throughput phase (deposits published 500 to a `publish_events` call through the
producer, fleet.publish's door, until every row exists), run with the producer's data check on
and off in turn, `--repeats` times each, in one invocation with one worker. Reports each side's
median publish rate (the door's own cost) and end-to-end rate, and the ratio.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from bench.report import Repeated, Throughput
from bench.run import (
    CONCURRENCY,
    Deposits,
    Setup,
    deposit,
    fleet_env,
    fleet_settings,
    warm_up_fleet,
)
from bench.support import OtherLoad, Worker, delete_queues, running, wait_for_count
from handlers.contracts import check_event
from handlers.envelope import Event
from handlers.registry import Registry
from infra.producer import Producer
from workers.bootstrap import Runtime


def _publish(producer: Producer, prefix: str, count: int, batch: int) -> list[str]:
    ids: list[str] = []
    for offset in range(0, count, batch):
        events: Sequence[Event] = [
            deposit(f"{prefix}-{n}", time.time()) for n in range(offset, min(count, offset + batch))
        ]
        ids += producer.publish(events)
    return ids


def _phase(setup: Setup, producer: Producer, deposits: Deposits, worker: Worker, *, label: str) -> Throughput:
    count, batch = setup.options.events, producer.settings.batch_size
    load = OtherLoad([worker.pgid])
    start = time.time()
    ids = _publish(producer, f"dc-{label.replace(' ', '-')}-{start:.0f}", count, batch)
    published = time.time()
    done = wait_for_count(deposits.count, count, worker, what=f"fleet throughput, {label}")
    other = load.cores()
    deposits.verify(ids, f"fleet throughput, {label}")
    deposits.truncate()
    return Throughput(label, "events", count, done - start, published - start, other)


def measure(setup: Setup, deposits: Deposits) -> tuple[Repeated, Repeated]:
    """The runs with the check and without, alternating so drifts in load hit both alike."""
    settings = fleet_settings(setup)
    runtime = Runtime(settings)
    args = ["-m", "workers", "worker", "-c", str(CONCURRENCY), "-n", f"bench-check-{setup.run_id}@%h"]
    worker = Worker("fleet", args, fleet_env(settings), setup.log_dir / "fleet-worker.log")
    checked: list[Throughput] = []
    unchecked: list[Throughput] = []
    try:
        with running(worker):
            producer = runtime.fleet().producer
            warm_up_fleet(runtime.fleet().publisher, deposits, worker, settings.batch_size)
            for _ in range(setup.options.repeats):
                for check, runs in ((True, checked), (False, unchecked)):
                    producer.check_data = check
                    label = "data checked" if check else "no data check"
                    run = _phase(setup, producer, deposits, worker, label=label)
                    print(
                        f"  {label:>14}: publish {run.items / run.publish_seconds:9,.0f} events/s, "
                        f"end to end {run.rate:7,.0f} events/s",
                        flush=True,
                    )
                    runs.append(run)
    finally:
        if not setup.broker_is_redis:
            delete_queues(runtime.app)
        runtime.fleet().close()
    return Repeated(tuple(checked)), Repeated(tuple(unchecked))


def check_cost(events: int = 20_000) -> float:
    """Microseconds one deposit's check takes (route lookup and model), alone in this process:
    the figure the end-to-end runs above are too noisy to resolve."""
    registry = Registry()
    batch = [deposit(f"cost-{n}", time.time()) for n in range(events)]
    start = time.perf_counter()
    for event in batch:
        check_event(registry.route_for(event.type), event)
    return (time.perf_counter() - start) / events * 1e6


def summary(checked: Repeated, unchecked: Repeated) -> None:
    def publish_rate(runs: Repeated) -> float:
        return sorted(run.items / run.publish_seconds for run in runs.runs)[(len(runs.runs) - 1) // 2]

    on, off = publish_rate(checked), publish_rate(unchecked)
    print(
        f"\ndata check, median of {len(checked.runs)}: publish {on:,.0f} vs {off:,.0f} events/s "
        f"without ({on / off - 1:+.1%}); end to end {checked.median.rate:,.0f} vs "
        f"{unchecked.median.rate:,.0f} events/s ({checked.median.rate / unchecked.median.rate - 1:+.1%})",
        flush=True,
    )
    print(f"the check alone: {check_cost():.1f} us per event", flush=True)
