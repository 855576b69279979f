"""Schema migrations: `upgrade()` brings a database to the newest revisions (`fleet db upgrade`).

The core's revisions are in infra/migrations/versions/; an installed domain with tables brings
its own directory (`Domain.migrations`), one more alembic version location whose revisions form
a branch labelled with the domain's name. Enabling the domain and upgrading adds its tables.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

_SCRIPTS = Path(__file__).with_name("migrations")


def _config(locations: Sequence[str] = ()) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    # os.pathsep between locations: a directory may contain spaces.
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join([str(_SCRIPTS / "versions"), *locations]))
    return config


class UnknownRevision(RuntimeError):
    """The database is at a revision no migration here knows: a domain's whose package is gone."""


def upgrade(engine: Engine, revision: str = "heads", locations: Sequence[str] = ()) -> None:
    """Apply the core's revisions and those of the domains' `locations`."""
    from alembic.util.exc import CommandError

    with engine.begin() as connection:
        config = _config(locations)
        config.attributes["connection"] = connection
        try:
            command.upgrade(config, revision)
        except CommandError as exc:
            if "Can't locate revision" not in str(exc):
                raise
            raise UnknownRevision(
                f"{exc}: the database holds a branch of a domain no installed package provides; "
                "install the domain's package again (it need not be in FLEET_DOMAINS)"
            ) from None


def current(engine: Engine) -> str | None:
    """The revisions a database is at, comma separated (one per branch)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        heads = MigrationContext.configure(connection).get_current_heads()
    return ",".join(sorted(heads)) or None


def head(locations: Sequence[str] = ()) -> str | None:
    """The newest revisions the migrations know, comma separated (one per branch)."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(_config(locations)).get_heads()
    return ",".join(sorted(heads)) or None


def missing_revision(engine: Engine, locations: Sequence[str] = ()) -> str | None:
    """What a database lacks, for readiness: None when it is at the newest revisions, else a
    sentence naming the revisions `fleet db upgrade` would bring it to."""
    at, newest = current(engine), head(locations)
    # A branch of a domain no longer enabled may stay in the database: only what is needed counts.
    if set((newest or "").split(",")) <= set((at or "").split(",")):
        return None
    return f"not migrated: at {at or 'no revision'}, needs {newest} (fleet db upgrade)"
