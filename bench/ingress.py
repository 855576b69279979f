"""The ingress benchmark: `fleet web` against three bare uvicorn apps, in one run: `no-op` answers
202 doing nothing, `lpush` first LPUSHes the body to Redis, `send` first hands the items to the
broker as one stock Celery message.

    .venv/bin/python -m bench.ingress [--seconds 10] [--repeats 5] [--graph-only] [--graph-rate 1000]
                                      [--broker redis|amqp]

Each is one uvicorn process on loopback, driven by the same client (bench/ingress_load.py):
single events and batches of 100 at `POST /events` (closed loop: as fast as answers come), and
Graph notification batches at 1,000 notifications/s (open loop). The 202 of the fleet and of
`send` means durably on the broker (Redis, or RabbitMQ with `--broker amqp`; `lpush` always uses
Redis); at the end every item each accepted is counted on its queue. One open-loop run's p99 is
its few slowest requests, so the Graph phase is repeated (the four taking turns at going first)
and judged by the median p99 of each.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import kombu
import redis

from bench.ingress_load import Outcome, closed_loop, open_loop, raw_request, request_items
from bench.report import disturbed
from bench.support import (
    BenchError,
    Latency,
    OtherLoad,
    Worker,
    delete_queues,
    fresh_database,
    private_redis_db,
    running,
)
from infra.db import make_engine
from infra.graph.schema import graph_subscriptions
from infra.ingress.api_keys import SqlApiKeys
from infra.settings import Settings
from workers.bootstrap import Runtime

GRAPH_BATCH = 10
GRAPH_RATE = 1000  # notifications per second


def _port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def server(name: str, args: list[str], env: dict[str, str], logs: Path, groups: list[int]) -> Iterator[int]:
    """One server process on a free port; its process group joins `groups` (for the load meter)."""
    port = _port()
    argv = [*args, "--port", str(port)] if "uvicorn" in args else args
    worker = Worker(name, argv, {**env, "FLEET_WEB_PORT": str(port)}, logs / f"{name}.log")
    groups.append(worker.pgid)
    with running(worker):
        deadline = time.monotonic() + 60
        while True:
            worker.check_alive()
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise BenchError(f"{name} did not start:\n{worker.tail()}") from None
                time.sleep(0.2)
        yield port


@dataclass(frozen=True)
class Scenario:
    name: str
    request: bytes
    per_request: int
    connections: int
    rate: float | None = None
    """Items per second (open loop); None: closed loop, as fast as answers come."""

    async def load(self, port: int, seconds: float) -> Outcome:
        if self.rate is None:
            return await closed_loop(port, self.request, connections=self.connections, seconds=seconds)
        requests_per_second = self.rate / self.per_request
        return await open_loop(
            port, self.request, rate=requests_per_second, seconds=seconds, connections=self.connections
        )


def _event(index: int) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": f"bench-{index}",
        "source": "bench",
        "type": "demo.deposit_recorded",
        "data": {"account": "acc-1", "amount": 1},
    }


def _notifications(state: str) -> list[dict[str, object]]:
    return [
        {
            "subscriptionId": "bench-sub",
            "changeType": "updated",
            "resource": f"Users/u-{n}",
            "resourceData": {"id": f"u-{n}"},
            "clientState": state,
            "tenantId": "bench",
        }
        for n in range(GRAPH_BATCH)
    ]


def _queued(client: redis.Redis, queue: str) -> int:
    total = 0
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        total += len(kwargs["events"])
    return total


def _drained(url: str, queues: list[str]) -> int:
    """Events in the Celery messages on RabbitMQ `queues`, taken off them one by one."""
    total = 0
    with kombu.Connection(url) as connection:
        for queue in queues:
            channel: Any = connection.channel()  # py-amqp's: kombu's type has no basic_get
            try:
                while (message := channel.basic_get(queue, no_ack=True)) is not None:
                    _, kwargs, _ = json.loads(message.body)
                    total += len(kwargs["events"])
            except connection.channel_errors:  # never declared (nothing was sent there): closed
                pass
            else:
                channel.close()
    return total


def _delete_amqp_queues(fleet_env: dict[str, str], send_queue: str) -> None:
    """The fleet's queues (as the settings in its `FLEET_*` environment name them) and the `send`
    app's (Celery made it with an exchange of its own name), on the same broker."""
    settings = Settings.model_validate(
        {name.removeprefix("FLEET_").lower(): value for name, value in fleet_env.items()}
    )
    delete_queues(Runtime(settings).app, also=[kombu.Queue(send_queue, kombu.Exchange(send_queue))])


def _pushed_items(client: redis.Redis, queue: str) -> int:
    """Items in the request bodies the `lpush` app stored: a Graph collection's, a batch's, or one."""
    total = 0
    for raw in client.lrange(queue, 0, -1):
        total += len(request_items(raw))
    return total


def _line(name: str, target: str, outcome: Outcome, per_request: int, other: float) -> str:
    latency = Latency.of(outcome.latencies)
    rps = len(outcome.latencies) / outcome.elapsed
    statuses = ",".join(f"{code}x{count}" for code, count in sorted(outcome.statuses.items()))
    return (
        f"{name:<26} {target:<6} {rps:>9.0f} req/s {rps * per_request:>9.0f} items/s "
        f"p50 {latency.p50:>7.2f} ms  p99 {latency.p99:>7.2f} ms  [{statuses}]  other {other:.2f}"
        + disturbed(other)
    )


def _measure(
    scenario: Scenario, targets: dict[str, int], seconds: float, order: list[str], groups: list[int]
) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    for target in order:
        meter = OtherLoad(groups)
        outcomes[target] = asyncio.run(scenario.load(targets[target], seconds))
        other = meter.cores()
        print(_line(scenario.name, target, outcomes[target], scenario.per_request, other), flush=True)
    return outcomes


def run(
    seconds: float,
    repeats: int,
    graph_only: bool,
    postgres: str,
    redis_host: str,
    *,
    graph_rate: float = GRAPH_RATE,
    amqp: str | None = None,
    data_check_compare: bool = False,
) -> int:
    """`amqp`: the fleet and `send` publish to this RabbitMQ instead of Redis."""
    with ExitStack() as stack:
        database = stack.enter_context(fresh_database(postgres))
        redis_db = stack.enter_context(private_redis_db(redis_host))
        broker = amqp or redis_db
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleet-bench-ingress-")))
        prefix = f"b{uuid.uuid4().hex[:6]}."
        engine = make_engine(database)
        _, token = SqlApiKeys(engine).create("bench", ["demo.*"])
        state = uuid.uuid4().hex
        now = datetime.now(UTC)
        with engine.begin() as connection:
            connection.execute(
                graph_subscriptions.insert().values(
                    id="bench-sub", resource="users", change_type="updated", notification_url="https://bench",
                    client_state=state, expires_at=now + timedelta(days=1), status="active", created_at=now,
                    updated_at=now,
                )
            )  # fmt: skip
        engine.dispose()
        env = {
            "FLEET_DATABASE_URL": database,
            "FLEET_BROKER_URL": broker,
            "FLEET_REDIS_URL": redis_db,
            "FLEET_QUEUE_PREFIX": prefix,
            "FLEET_KEY_PREFIX": prefix.rstrip("."),
            "FLEET_LOG_LEVEL": "WARNING",
        }
        groups: list[int] = []
        uvicorn = ["-m", "uvicorn", "--log-level", "warning"]
        noop = stack.enter_context(
            server("no-op", [*uvicorn, "bench.ingress_load:bare_app"], env, logs, groups)
        )
        send_queue = prefix + "bench.send"
        fleet_queues = [prefix + "fleet.demo", prefix + "fleet.graph"]
        if amqp:  # RabbitMQ keeps queues after the run: these go when the servers have stopped
            stack.callback(_delete_amqp_queues, env, send_queue)
        send_env = {**env, "BENCH_SEND_BROKER_URL": broker, "BENCH_SEND_QUEUE": send_queue}
        send = stack.enter_context(
            server("send", [*uvicorn, "--factory", "bench.ingress_load:send_app"], send_env, logs, groups)
        )
        lpush_queue = prefix + "bench.lpush"
        lpush = stack.enter_context(
            server(
                "lpush",
                [*uvicorn, "--factory", "bench.ingress_load:lpush_app"],
                {**env, "BENCH_LPUSH_REDIS_URL": redis_db, "BENCH_LPUSH_QUEUE": lpush_queue},
                logs,
                groups,
            )
        )
        fleet = stack.enter_context(server("fleet", ["-m", "workers", "web"], env, logs, groups))
        # The same web without the data check, on the same queues, to compare with.
        unchecked = {**env, "FLEET_CHECK_DATA": "false"}
        compared = [("nochk", ["-m", "workers", "web"], unchecked)] if data_check_compare else []
        more = {name: stack.enter_context(server(name, argv, e, logs, groups)) for name, argv, e in compared}
        auth = {"Authorization": f"Bearer {token}"}
        single = raw_request(
            "/events",
            json.dumps(_event(0)).encode(),
            {**auth, "Content-Type": "application/cloudevents+json"},
        )
        batch = raw_request(
            "/events", json.dumps([_event(n) for n in range(100)]).encode(),
            {**auth, "Content-Type": "application/cloudevents-batch+json"},
        )  # fmt: skip
        notifications = raw_request(
            "/graph/notifications", json.dumps({"value": _notifications(state)}).encode(),
            {"Content-Type": "application/json"},
        )  # fmt: skip
        scenarios = [
            Scenario("single event, 16 clients", single, 1, connections=16),
            Scenario("batch of 100, 4 clients", batch, 100, connections=4),
            Scenario(
                f"graph {graph_rate:.0f}/s by {GRAPH_BATCH}", notifications, GRAPH_BATCH, 32, graph_rate
            ),
        ]
        if graph_only:
            scenarios = scenarios[2:]
        targets = {"no-op": noop, "lpush": lpush, "send": send, "fleet": fleet, **more}
        names = list(targets)
        accepted = dict.fromkeys(names, 0)
        results: dict[tuple[str, str], list[Outcome]] = {}
        for scenario in scenarios:
            for target, port in targets.items():  # all warmed: connections, code paths, caches
                warm_up = asyncio.run(scenario.load(port, seconds / 2))
                accepted[target] += warm_up.statuses[202] * scenario.per_request
            rounds = repeats if scenario.rate is not None else 1
            for round_ in range(rounds):
                order = names[round_ % len(names) :] + names[: round_ % len(names)]
                for target, outcome in _measure(scenario, targets, seconds, order, groups).items():
                    results.setdefault((scenario.name, target), []).append(outcome)
                    accepted[target] += outcome.statuses[202] * scenario.per_request
        client = redis.Redis.from_url(redis_db)
        if amqp:
            on_broker = {"fleet": _drained(amqp, fleet_queues), "send": _drained(amqp, [send_queue])}
        else:
            on_broker = {
                "fleet": sum(_queued(client, queue) for queue in fleet_queues),
                "send": _queued(client, send_queue),
            }
        on_broker["lpush"] = _pushed_items(client, lpush_queue)
        client.close()
        accepted["fleet"] += accepted.pop("nochk", 0)  # both fleet webs send to the fleet's queues
        print()
        for target, count in on_broker.items():
            print(f"{target}: items accepted (202) {accepted[target]}; on the broker {count}")
            if count != accepted[target]:
                raise BenchError(f"{target}: {accepted[target]} items acknowledged but {count} on the broker")
        graph = scenarios[-1].name
        p99 = {target: _median_p99(results[(graph, target)]) for target in names}
        print(
            f"graph at {graph_rate:.0f} notifications/s, median p99 of {repeats}: "
            f"no-op app {p99['no-op']:.2f} ms, app + LPUSH {p99['lpush']:.2f} ms, "
            f"app + Celery send {p99['send']:.2f} ms, fleet {p99['fleet']:.2f} ms\n"
            f"  fleet / no-op app (reads the body, 202):          {p99['fleet'] / p99['no-op']:.2f}x "
            "(issue 3's target: at most 2x)\n"
            f"  app + LPUSH / no-op app:                          {p99['lpush'] / p99['no-op']:.2f}x "
            "(the least any durable 202 costs)\n"
            f"  fleet / app + LPUSH (LPUSH of the body, 202):     {p99['fleet'] / p99['lpush']:.2f}x\n"
            f"  fleet / app + send (json.loads, send_task, 202): {p99['fleet'] / p99['send']:.2f}x "
            "(same durable work with stock Celery; Graph's budget is 3000 ms)"
        )
        _print_check_cost(results, [] if graph_only or not more else scenarios[:2])
        if not graph_only:
            [batches] = results[(scenarios[1].name, "fleet")]
            rate = batches.statuses[202] * 100 / batches.elapsed
            print(f"batch ingest: {rate:.0f} events/s durably enqueued (target 10000)")
        return 0


def _print_check_cost(results: dict[tuple[str, str], list[Outcome]], scenarios: list[Scenario]) -> None:
    """The fleet web's rate with the data check against the one without (`nochk`)."""
    for scenario in scenarios:
        [on], [off] = results[(scenario.name, "fleet")], results[(scenario.name, "nochk")]
        on_rate, off_rate = len(on.latencies) / on.elapsed, len(off.latencies) / off.elapsed
        print(
            f"data check, {scenario.name}: {on_rate:.0f} req/s vs {off_rate:.0f} without "
            f"({on_rate / off_rate - 1:+.1%})"
        )


def _median_p99(outcomes: list[Outcome]) -> float:
    return statistics.median(Latency.of(outcome.latencies).p99 for outcome in outcomes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured phase")
    parser.add_argument("--repeats", type=int, default=5, help="runs of the Graph phase per side")
    parser.add_argument("--graph-only", action="store_true", help="skip the closed-loop /events phases")
    parser.add_argument(
        "--graph-rate", type=float, default=GRAPH_RATE, help="notifications per second (issue 3: 1,000)"
    )
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument(
        "--broker", choices=["redis", "amqp"], default="redis", help="where the fleet and `send` publish"
    )
    parser.add_argument(
        "--amqp", default="amqp://guest:guest@127.0.0.1:5672//", help="RabbitMQ, for --broker amqp"
    )
    parser.add_argument(
        "--data-check-compare",
        action="store_true",
        help="also a fleet web without the data check (FLEET_CHECK_DATA=false), to compare",
    )
    args = parser.parse_args()
    try:
        sys.exit(
            run(
                args.seconds,
                args.repeats,
                args.graph_only,
                args.postgres,
                args.redis,
                graph_rate=args.graph_rate,
                amqp=args.amqp if args.broker == "amqp" else None,
                data_check_compare=args.data_check_compare,
            )
        )
    except BenchError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
