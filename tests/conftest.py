"""Session-wide fixtures: a fresh PostgreSQL database and a Redis logical database of our own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import Engine, text

from infra.db import make_engine
from infra.migrate import upgrade
from tests.support.services import POSTGRES_ADMIN_URL, REDIS_HOST, require

_USER_TABLES = (
    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    require("postgres")
    name = f"fleet_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url)
    with engine.begin() as connection:  # every table the migrations made, whichever issue added it
        tables = connection.execute(text(_USER_TABLES)).scalars()
        connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY"))
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A logical database no other test run holds (a lock key in it), flushed for us alone."""
    require("redis")
    token = uuid.uuid4().hex
    for db in range(15, 0, -1):
        client = redis.Redis.from_url(f"{REDIS_HOST}/{db}")
        if client.set("fleet-test-run-lock", token, nx=True, ex=3600):
            client.flushdb()
            client.set("fleet-test-run-lock", token, ex=3600)
            yield f"{REDIS_HOST}/{db}"
            if client.get("fleet-test-run-lock") == token.encode():
                client.flushdb()
            client.close()
            return
        client.close()
    pytest.fail("every Redis logical database 1-15 is held by another test run")


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A database of its own, never migrated (the session's is migrated, and shared by its tests)."""
    require("postgres")
    name = f"fleet_fresh_{uuid.uuid4().hex[:10]}"
    admin = make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
