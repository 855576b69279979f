"""The container health check: asks the process this container runs (PID 1) whether it is well.

`fleet web`: GET /healthz. `fleet worker` with FLEET_WORKER_METRICS_PORT: GET /metrics (the port
is served by the worker's main process). `fleet beat` and the bridges: Redis answers (they do
nothing without it). Exit 0 healthy, 1 not (Docker's HEALTHCHECK contract).
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path


def command() -> str:
    args = Path("/proc/1/cmdline").read_bytes().split(b"\0")
    words = [arg.decode() for arg in args if arg and not arg.startswith(b"-")]
    for known in ("web", "worker", "beat", "bridge"):
        if known in words:
            return known
    return "unknown"


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=4) as response:  # noqa: S310 - a fixed loopback URL
        return bool(response.status == 200)


def redis_ok() -> bool:
    from infra.settings import Settings  # the same clients as the fleet: TLS files, Sentinel group

    settings = Settings()
    client = settings.redis_access().client(
        settings.coordination_url, socket_timeout=4, socket_connect_timeout=4
    )
    return bool(client.ping())


def main() -> int:
    process = command()
    try:
        if process == "web":
            return 0 if http_ok(f"http://127.0.0.1:{os.environ.get('FLEET_WEB_PORT', '8000')}/healthz") else 1
        if process == "worker" and (port := os.environ.get("FLEET_WORKER_METRICS_PORT")):
            return 0 if http_ok(f"http://127.0.0.1:{port}/metrics") else 1
        return 0 if redis_ok() else 1
    except Exception as exc:
        print(f"unhealthy ({process}): {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
