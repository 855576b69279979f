"""The runtime schedules, in PostgreSQL: what operators added, changed or removed over the seed
(`FLEET_SCHEDULES`), one row per job name. A row's `entry` is the job's JSON entry (the keys of
`FLEET_SCHEDULES`); NULL says the job is removed, so a seeded job stays removed after a restart.

Every change also bumps `{p}:schedules:changed` in Redis, which beat reads each tick to reload at
once; beat reloads every `RELOAD_SECONDS` regardless, should a bump ever be lost.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy import Column, DateTime, Engine, String, Table, Text, select
from sqlalchemy.dialects.postgresql import insert

from infra import keys
from infra.audit import record_in
from infra.schedules.state import ScheduleState
from infra.schema import metadata

RELOAD_SECONDS = 30.0

runtime_schedules = Table(
    "fleet_schedules",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("entry", Text, nullable=True),  # the job's JSON entry; NULL: removed
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(200), nullable=False),
)


class SqlSchedules:
    """Reads and writes the runtime schedules; each write announces itself to beat."""

    def __init__(self, engine: Engine, client: redis.Redis, prefix: str) -> None:
        self._engine = engine
        self._redis = client
        self._prefix = prefix

    def overrides(self) -> dict[str, dict[str, Any] | None]:
        """Every stored job: its entry, or None if removed."""
        query = select(runtime_schedules.c.name, runtime_schedules.c.entry)
        with self._engine.connect() as connection:
            return {
                name: json.loads(entry) if entry is not None else None
                for name, entry in connection.execute(query)
            }

    def put(
        self, name: str, entry: dict[str, Any] | None, *, actor: str, role: str, action: str = "schedules.set"
    ) -> None:
        """Store `entry` as the job `name` (None: remove it), and its audit entry in the same
        transaction. The job starts afresh: its next slot follows the new schedule, not the slots
        the old one left."""
        row = {
            "name": name,
            "entry": json.dumps(entry, sort_keys=True) if entry is not None else None,
            "updated_at": datetime.now(UTC),
            "updated_by": actor[:200],
        }
        statement = insert(runtime_schedules).values(row)
        statement = statement.on_conflict_do_update(
            index_elements=[runtime_schedules.c.name],
            set_={column: statement.excluded[column] for column in ("entry", "updated_at", "updated_by")},
        )
        detail = row["entry"] if entry is not None else "removed"
        with self._engine.begin() as connection:
            connection.execute(statement)
            record_in(connection, actor=actor, role=role, action=action, target=name, detail=str(detail))
        ScheduleState(self._redis, self._prefix).forget_last_slot(name)
        self._redis.incr(keys.schedules_changed(self._prefix))

    def version(self) -> int:
        """Bumped by every change; beat reloads when it differs from what it loaded."""
        return int(self._redis.get(keys.schedules_changed(self._prefix)) or 0)
