"""The faults, each done to a fleet while the producer sends at a steady rate; each returns the
moment the fault ended (a heal) or struck for good (a kill), from which recovery is measured."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis

from bench.cluster.cluster import DATABASE, PROXY_PORT, WORKERS, Fleet
from bench.cluster.network import GATEWAY
from bench.cluster.proxy import LossyProxy
from bench.cluster.services import POSTGRES_PORT, wait_for

PARTITION_SECONDS = 30.0
DEGRADED_SECONDS = 20.0
DEGRADED_RATE = "2mbit"
PROXY_DELAY = 0.05  # each chunk, each way
PROXY_DROPS = 0.05  # cuts per connection per second
REPLICATION_CUT = 2.0
# A master's death loses only what is still on it unreplicated: with workers keeping up, every
# message is taken within milliseconds of its LPUSH. At 40 ms an event the three workers run
# about 150 events/s, so a queue builds up behind the 200/s flow, as in a fleet running behind.
BACKLOG_WORK_MS = 40  # seconds the replication stream is dropped before the master dies


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    fault: Callable[[Fleet, dict[str, object]], Awaitable[float]]
    min_replicas: int = 0
    through_proxy: bool = False
    work_ms: int | None = None
    """The handler's time per event when the scenario needs its own (else --work-ms)."""


async def partition_a_worker(fleet: Fleet, notes: dict[str, object]) -> float:
    host = WORKERS[1]
    await asyncio.to_thread(host.partition)
    notes["partitioned"] = time.time()
    try:
        await asyncio.sleep(PARTITION_SECONDS)
    finally:
        await asyncio.to_thread(host.heal)
    return time.time()


async def partition_then_lose_a_worker(fleet: Fleet, notes: dict[str, object]) -> float:
    """As `partition_a_worker`, but the host dies (every process SIGKILLed) before the heal: what
    it took and had not recorded as taken is nowhere else."""
    host = WORKERS[1]
    await asyncio.to_thread(host.partition)
    try:
        await asyncio.sleep(PARTITION_SECONDS)
        notes["processes killed"] = await asyncio.to_thread(host.kill_everything)
    finally:
        await asyncio.to_thread(host.heal)
    return time.time()


async def lose_a_worker_host(fleet: Fleet, notes: dict[str, object]) -> float:
    killed = await asyncio.to_thread(WORKERS[1].kill_everything)
    notes["processes killed"] = killed
    return time.time()


async def kill_the_redis_master(fleet: Fleet, notes: dict[str, object]) -> float:
    """Drop the replication stream (master to replica) for REPLICATION_CUT seconds, then SIGKILL
    the master; once the sentinels promoted the replica, let the stream through again and start
    the dead server, empty, as its supervisor would: the sentinels make it the new master's
    replica, so a fleet asking for one replica's acknowledgement can be acknowledged again.

    The cut stands for a replica that lags when the master dies (a busy or broken link): here
    both share one kernel and replicate within a millisecond, so a bare kill almost never
    catches a write the replica has not got. Sentinels, workers and the ingress still reach
    the master meanwhile."""
    group = fleet.redis
    assert group is not None
    old = await asyncio.to_thread(group.master_port)
    rule = await asyncio.to_thread(_replication_rule, old)
    await asyncio.to_thread(DATABASE.run, "iptables", "-I", *rule)
    try:
        await asyncio.sleep(REPLICATION_CUT)
        group.server_on(old).signal(signal.SIGKILL)
        killed = time.time()
        new = await asyncio.to_thread(
            wait_for,
            lambda: (port := group.master_port()) != old and port,
            60,
            "the sentinels to promote the replica",
        )
        notes["promoted after"] = f"{time.time() - killed:.1f} s"
    finally:
        await asyncio.to_thread(DATABASE.run, "iptables", "-D", *rule, check=False)
    await asyncio.sleep(3)
    await asyncio.to_thread(group.start_server, old)

    def replicating() -> bool:
        client = redis.Redis(DATABASE.address, int(str(new)), socket_timeout=2)
        try:
            return int(client.info("replication")["connected_slaves"]) >= 1
        finally:
            client.close()

    await asyncio.to_thread(wait_for, replicating, 60, "the old master to replicate the new one")
    notes["replica back after"] = f"{time.time() - killed:.1f} s"
    return killed


def _replication_rule(master_port: int) -> list[str]:
    """The iptables rule (chain onwards) that drops what the master sends its replica: the
    replica's connection is found by its address and port in the master's CLIENT LIST."""
    client = redis.Redis(DATABASE.address, master_port, socket_timeout=2)
    try:
        replicas = client.client_list(_type="replica")
    finally:
        client.close()
    host, port = replicas[0]["addr"].rsplit(":", 1)
    match = ["-p", "tcp", "--sport", str(master_port), "-d", host, "--dport", port]
    return ["OUTPUT", *match, "-j", "DROP"]


async def degrade_the_database_link(fleet: Fleet, notes: dict[str, object]) -> float:
    proxy = notes["proxy"]
    assert isinstance(proxy, LossyProxy)
    for host in WORKERS:
        await asyncio.to_thread(host.limit_bandwidth, DEGRADED_RATE)
    proxy.faulty = True
    try:
        await asyncio.sleep(DEGRADED_SECONDS)
    finally:
        proxy.faulty = False
        for host in WORKERS:
            await asyncio.to_thread(host.unlimit_bandwidth)
    notes["connections cut"] = proxy.cut
    return time.time()


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("worker-lost", "a worker host loses power (every process SIGKILLed)", lose_a_worker_host),
        Scenario(
            "worker-partitioned",
            f"a worker host cut off for {PARTITION_SECONDS:g} s, then healed",
            partition_a_worker,
        ),
        Scenario(
            "worker-cut-then-lost",
            f"a worker host cut off for {PARTITION_SECONDS:g} s, then SIGKILLed, then healed",
            partition_then_lose_a_worker,
        ),
        Scenario(
            "master-killed-wait",
            f"replication cut {REPLICATION_CUT:g} s, then the master SIGKILLed, FLEET_REDIS_MIN_REPLICAS=1",
            kill_the_redis_master,
            min_replicas=1,
            work_ms=BACKLOG_WORK_MS,
        ),
        Scenario(
            "master-killed",
            f"replication cut {REPLICATION_CUT:g} s, then the master SIGKILLed, FLEET_REDIS_MIN_REPLICAS=0",
            kill_the_redis_master,
            work_ms=BACKLOG_WORK_MS,
        ),
        Scenario(
            "slow-lossy-database",
            f"workers-database link at {DEGRADED_RATE}, +{PROXY_DELAY * 1000:g} ms a chunk, connections cut, "
            f"for {DEGRADED_SECONDS:g} s",
            degrade_the_database_link,
            through_proxy=True,
        ),
    )
}


def make_proxy() -> LossyProxy:
    return LossyProxy(
        listen=(GATEWAY, PROXY_PORT),
        target=(DATABASE.address, POSTGRES_PORT),
        delay=PROXY_DELAY,
        drop_per_second=PROXY_DROPS,
    )
