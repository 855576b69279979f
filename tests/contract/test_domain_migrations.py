"""A domain's migrations are a branch of their own: installing the domain adds its tables to a
migrated database, and the fleet's readiness asks for them only while the domain is installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect

from infra.db import make_engine
from infra.migrate import UnknownRevision, current, missing_revision, upgrade

TICKETS = str(Path(__file__).parents[2] / "examples" / "fleet-tickets" / "fleet_tickets" / "migrations")


@pytest.fixture(params=["sqlite", "postgres"])
def migrated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database of its own at the fleet's newest revisions (the session's stays the core's)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fleet.db'}"
    else:
        url = request.getfixturevalue("fresh_database")
    engine = make_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()


def test_installing_a_domain_adds_its_tables_to_a_migrated_database(migrated: Engine) -> None:
    assert "tickets" not in inspect(migrated).get_table_names()
    assert missing_revision(migrated) is None
    assert "tickets_0001" in (missing_revision(migrated, [TICKETS]) or "")

    upgrade(migrated, locations=[TICKETS])

    assert "tickets" in inspect(migrated).get_table_names()
    assert "tickets_0001" in (current(migrated) or "").split(",")
    assert missing_revision(migrated, [TICKETS]) is None
    upgrade(migrated, locations=[TICKETS])  # again: nothing to do


def test_a_branch_whose_package_is_gone_is_named_not_guessed(migrated: Engine) -> None:
    upgrade(migrated, locations=[TICKETS])
    with pytest.raises(UnknownRevision, match=r"tickets_0001.*install the domain's package again"):
        upgrade(migrated)
