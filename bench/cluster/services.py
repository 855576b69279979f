"""What runs on the cluster's hosts: PostgreSQL and the Redis Sentinel group on the database host,
`fleet worker` on the worker hosts, `fleet web` on the ingress host. Each is a process group
started through `ip netns exec`, logging to a file of the run's directory, stopped by its PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis

from bench.cluster.network import SUBNET, Host

MASTER_GROUP = "fleet"
REDIS_PORT, REPLICA_PORT = 6379, 6380
SENTINEL_PORTS = (26379, 26380, 26381)
POSTGRES_PORT = 5432
ROOT = Path(__file__).resolve().parents[2]  # the checkout: `python -m workers` runs from it


def wait_for(check: Callable[[], object], timeout: float, what: str, interval: float = 0.2) -> object:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except Exception:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:g} s for {what}")
        time.sleep(interval)


@dataclass
class Process:
    """A process group on a host: `ip netns exec` execs the command, so its PID is the server's."""

    name: str
    host: Host
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signum)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGINT (PostgreSQL's fast shutdown, Redis's save-less exit), SIGKILL after `timeout`."""
        self.signal(signal.SIGINT)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)


def start(
    name: str, host: Host, argv: Sequence[str], logs: Path, env: Mapping[str, str] | None = None
) -> Process:
    log = logs / f"{name}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(
            host.command(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=ROOT,
            start_new_session=True,
        )
    return Process(name, host, popen, log)


def _postgres_bin(tool: str) -> str:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    if not versions:
        raise RuntimeError("no PostgreSQL under /usr/lib/postgresql (Debian package postgresql)")
    return str(versions[0] / tool)


def as_postgres(argv: Sequence[str]) -> list[str]:
    # setpriv execs the server itself (no parent left between the harness and the postmaster)
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *argv]


def start_postgres(host: Host, directory: Path, logs: Path) -> Process:
    """A PostgreSQL of the run's own on the database host: trust authentication, default
    durability (fsync on, synchronous commit), listening on the host's address only."""
    data = directory / "pgdata"
    directory.mkdir(parents=True, exist_ok=True)
    shutil.chown(directory, "postgres", "postgres")
    subprocess.run(
        as_postgres([_postgres_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    # trust for the cluster's subnet: a bench of its own, no other client can reach it
    with (data / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all all {SUBNET}.0/24 trust\n")
    argv = as_postgres(
        [
            _postgres_bin("postgres"),
            "-D",
            str(data),
            "-k",
            str(directory),
            "-h",
            host.address,
            "-p",
            str(POSTGRES_PORT),
            "-c",
            "max_connections=300",
        ]
    )
    process = start("postgres", host, argv, logs)

    def answers() -> bool:
        psycopg.connect(postgres_url(host, "postgres"), connect_timeout=2).close()
        return True

    wait_for(answers, timeout=60, what="PostgreSQL on the database host")
    return process


def postgres_url(host: Host, database: str, *, address: str | None = None, port: int = POSTGRES_PORT) -> str:
    return f"postgresql://postgres@{address or host.address}:{port}/{database}"


def create_database(host: Host, name: str) -> None:
    with psycopg.connect(postgres_url(host, "postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


@dataclass
class RedisGroup:
    """A master, one replica and three sentinels (quorum 2), all on the database host."""

    host: Host
    directory: Path
    logs: Path
    servers: dict[str, Process]

    @property
    def url(self) -> str:
        return ";".join(f"sentinel://{self.host.address}:{port}/0" for port in SENTINEL_PORTS)

    def master_port(self) -> int:
        client = redis.Redis(self.host.address, SENTINEL_PORTS[0], socket_timeout=2)
        try:
            _, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_GROUP)  # type: ignore[no-untyped-call]
            return int(port)
        finally:
            client.close()

    def server_on(self, port: int) -> Process:
        return self.servers[f"redis-{port}"]

    def start_server(self, port: int, *extra: str) -> Process:
        directory = self.directory / f"redis-{port}"
        directory.mkdir(parents=True, exist_ok=True)
        argv = ["redis-server", "--bind", self.host.address, "--port", str(port), "--dir", str(directory)]
        # protected mode refuses other addresses' clients without a password; the subnet is the bench's
        argv += ["--save", "", "--appendonly", "no", "--protected-mode", "no", *extra]
        process = start(f"redis-{port}", self.host, argv, self.logs)
        self.servers[process.name] = process
        client = redis.Redis(self.host.address, port, socket_timeout=1)
        wait_for(client.ping, timeout=20, what=f"redis-server {port}")
        client.close()
        return process

    def stop(self) -> None:
        for process in self.servers.values():
            process.kill()


def start_redis_group(host: Host, directory: Path, logs: Path) -> RedisGroup:
    """Sentinels declare the master down after 2 s of silence and promote the replica (no
    persistence: each server keeps its data in memory, as the shared Redis does)."""
    group = RedisGroup(host, directory, logs, {})
    group.start_server(REDIS_PORT)
    group.start_server(REPLICA_PORT, "--replicaof", host.address, str(REDIS_PORT))
    master = redis.Redis(host.address, REDIS_PORT, socket_timeout=2)
    wait_for(lambda: int(master.info("replication")["connected_slaves"]) == 1, 30, "the replica in sync")
    master.close()
    for port in SENTINEL_PORTS:
        conf = directory / f"sentinel-{port}" / "sentinel.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(
            f"port {port}\nbind {host.address}\nprotected-mode no\ndir {conf.parent}\n"
            f"sentinel monitor {MASTER_GROUP} {host.address} {REDIS_PORT} 2\n"
            f"sentinel down-after-milliseconds {MASTER_GROUP} 2000\n"
            f"sentinel failover-timeout {MASTER_GROUP} 10000\n"
        )
        group.servers[f"sentinel-{port}"] = start(
            f"sentinel-{port}", host, ["redis-server", str(conf), "--sentinel"], logs
        )
    wait_for(lambda: group.master_port() == REDIS_PORT, 30, "the sentinels to see the master")
    return group
