"""The console's audit log: every change an operator makes, with who, when and what.

Rows are only ever appended; the console shows the newest. Nothing the console does is
kept in process memory, so the log survives restarts and any number of web processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
)

from infra.schema import metadata

_Id = BigInteger().with_variant(Integer(), "sqlite")

audit_log = Table(
    "fleet_console_audit",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("action", String(100), nullable=False),  # e.g. 'dead_letters.replay'
    Column("target", Text, nullable=False),  # what it acted on: ids, a fingerprint, a worker
    Column("detail", Text, nullable=False, server_default=""),  # outcome, or the payload edit
    Index("ix_fleet_console_audit_at", "at"),
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    target: str
    detail: str


def record_in(
    connection: Connection, *, actor: str, role: str, action: str, target: str, detail: str = ""
) -> None:
    """Append an entry in the caller's transaction, so a change and its entry commit together."""
    row = {
        "at": datetime.now(UTC),
        "actor": actor[:200],
        "role": role[:20],
        "action": action,
        "target": target[:10_000],
        "detail": detail[:100_000],
    }
    connection.execute(insert(audit_log).values(row))


class SqlAuditLog:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, *, actor: str, role: str, action: str, target: str, detail: str = "") -> None:
        with self._engine.begin() as connection:
            record_in(connection, actor=actor, role=role, action=action, target=target, detail=detail)

    def recent(self, limit: int = 200) -> list[AuditEntry]:
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        with self._engine.connect() as connection:
            return [AuditEntry(**row._asdict()) for row in connection.execute(query)]
