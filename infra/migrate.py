"""Schema migrations: `upgrade()` brings a database to the newest revision (`fleet db upgrade`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

_SCRIPTS = Path(__file__).with_name("migrations")


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(_SCRIPTS))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head() -> str | None:
    """The newest revision the migrations know."""
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return ScriptDirectory.from_config(config).get_current_head()


def missing_revision(engine: Engine) -> str | None:
    """What a database lacks, for readiness: None when it is at the newest revision, else a
    sentence naming the revision `fleet db upgrade` would bring it to."""
    at, newest = current(engine), head()
    if at == newest:
        return None
    return f"not migrated: at {at or 'no revision'}, needs {newest} (fleet db upgrade)"
