"""The real services the tests use, and what happens when one is missing.

With CI=true a missing service fails the run; on a developer's machine it skips the tests that
need it, saying which service and how to start it.
"""

from __future__ import annotations

import os
import socket

import pytest

SERVICES = {
    "redis": ("127.0.0.1", 6379, "redis-server --daemonize yes --port 6379"),
    "postgres": ("127.0.0.1", 5432, "pg_ctlcluster $(ls /etc/postgresql) main start"),
    "rabbitmq": ("127.0.0.1", 5672, "rabbitmq-server -detached"),
}

REDIS_HOST = os.environ.get("FLEET_TEST_REDIS", "redis://127.0.0.1:6379")
POSTGRES_ADMIN_URL = os.environ.get("FLEET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("FLEET_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")


def require(name: str) -> None:
    host, port, start = SERVICES[name]
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        message = f"{name} is not reachable at {host}:{port} ({exc}); start it with: {start}"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
