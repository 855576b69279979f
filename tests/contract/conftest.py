"""The same store tests on the embedded SQLite default and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine

from infra.db import make_engine
from infra.migrate import upgrade


@pytest.fixture(params=["sqlite", "postgres"])
def store_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'fleet.db'}")
        upgrade(engine)
        yield engine
        engine.dispose()
    else:
        yield request.getfixturevalue("engine")  # a migrated PostgreSQL database, truncated


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of this test run's Redis database."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()
