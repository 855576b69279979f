"""One fleet on the cluster's hosts, for one scenario: its database on the database host's
PostgreSQL, a fresh Sentinel group, an API key, `fleet web` on the ingress host and one
`fleet worker` per worker host, all reaching Redis through the sentinels."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from bench.cluster.network import GATEWAY, Host
from bench.cluster.services import (
    MASTER_GROUP,
    ROOT,
    Process,
    RedisGroup,
    create_database,
    postgres_url,
    start,
    start_redis_group,
    wait_for,
)

DATABASE = Host("db", 2)
WORKERS = (Host("w1", 11), Host("w2", 12), Host("w3", 13))
INGRESS = Host("in", 20)
HOSTS = (DATABASE, *WORKERS, INGRESS)
WEB_PORT = 8000
PROXY_PORT = 15432  # the harness's lossy proxy to PostgreSQL, on the gateway
WORKER_CONCURRENCY = 2


def python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else "python3"


@dataclass
class Fleet:
    name: str
    directory: Path
    min_replicas: int = 0
    through_proxy: bool = False
    redis: RedisGroup | None = None
    web: Process | None = None
    workers: dict[str, Process] = field(default_factory=dict)
    token: str = ""

    @property
    def database_url(self) -> str:
        """What the harness and the checker use: PostgreSQL directly."""
        return postgres_url(DATABASE, self.name)

    @property
    def ingress_url(self) -> str:
        return f"http://{INGRESS.address}:{WEB_PORT}/events"

    def env(self, *, database_url: str | None = None) -> dict[str, str]:
        assert self.redis is not None
        return {
            "FLEET_BROKER_URL": self.redis.url,
            "FLEET_REDIS_SENTINEL_MASTER": MASTER_GROUP,
            "FLEET_REDIS_MIN_REPLICAS": str(self.min_replicas),
            "FLEET_DATABASE_URL": database_url or self.database_url,
            "FLEET_LOG_LEVEL": "INFO",
            "FLEET_WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
            "FLEET_WEB_HOST": INGRESS.address,
            "FLEET_WEB_PORT": str(WEB_PORT),
        }

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        create_database(DATABASE, self.name)
        self.redis = start_redis_group(DATABASE, self.directory / "redis", self.directory)
        self._fleet_cli(["db", "upgrade"])
        self.token = (
            self._fleet_cli(["keys", "create", "bench-cluster", "--type", "demo.*"]).strip().splitlines()[-1]
        )
        self.web = start("web", INGRESS, [python(), "-m", "workers", "web"], self.directory, self.env())
        wait_for(
            lambda: httpx.get(f"http://{INGRESS.address}:{WEB_PORT}/readyz", timeout=2).status_code == 200,
            timeout=90,
            what="fleet web's /readyz on the ingress host",
        )
        for host in WORKERS:
            self.start_worker(host)
        for host in WORKERS:
            log = f"worker-{host.name}"
            wait_for(lambda log=log: "ready" in self._log(log), 120, f"the worker on {host.name}")  # type: ignore[misc]

    def start_worker(self, host: Host) -> Process:
        database = (
            postgres_url(DATABASE, self.name, address=GATEWAY, port=PROXY_PORT)
            if self.through_proxy
            else None
        )
        argv = [python(), "-m", "workers", "worker", "-n", f"worker@{host.name}"]
        process = start(f"worker-{host.name}", host, argv, self.directory, self.env(database_url=database))
        self.workers[host.name] = process
        return process

    def broker_leftovers(self) -> dict[str, int]:
        """What the master still holds once the run settled: each queue's length and the number of
        messages recorded as taken but not acknowledged (kombu's `unacked` hash)."""
        assert self.redis is not None
        client = redis.Redis(DATABASE.address, self.redis.master_port(), socket_timeout=5)
        try:
            held: dict[str, int] = {}
            for key in client.scan_iter(count=1000):
                kind = client.type(key)
                if kind == b"list":
                    held[key.decode()] = int(client.llen(key))
                elif kind == b"hash" and key.endswith(b"unacked"):
                    held[key.decode()] = int(client.hlen(key))
            return held
        finally:
            client.close()

    def stop(self) -> None:
        for process in [*self.workers.values(), *([self.web] if self.web else [])]:
            process.kill()
        if self.redis is not None:
            self.redis.stop()

    def _log(self, name: str) -> str:
        path = self.directory / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _fleet_cli(self, args: list[str]) -> str:
        """A `fleet` command from the harness (root namespace), straight to the database host."""
        done = subprocess.run(
            [python(), "-m", "workers", *args],
            env={**os.environ, **self.env()},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"fleet {' '.join(args)}: {done.stderr[-2000:]}")
        return done.stdout
