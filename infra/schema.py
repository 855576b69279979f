"""The fleet's tables (SQLAlchemy Core). Alembic migrations in infra/migrations create them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()
_Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements only INTEGER keys

processed_events = Table(
    "fleet_processed_events",
    metadata,
    Column("handler", String(200), primary_key=True),
    Column("event_key", String(32), primary_key=True),  # blake2b-128 of (source, id); see infra/ledger.py
    Column("status", String(10), nullable=False),  # 'done' or 'claimed'
    Column("owner", String(64)),  # claim mode: the message holding the lease
    Column("lease_until", Float),  # claim mode: epoch seconds
    Column("processed_at", Float, nullable=False),
)

dead_letters = Table(
    "fleet_dead_letters",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("handler", String(200), nullable=False),
    Column("event_type", String(256), nullable=False),
    Column("source", String(1024), nullable=False),
    Column("event_id", String(1024), nullable=False),
    Column("queue", String(200), nullable=False),
    Column("envelope", Text, nullable=False),  # the event as received, whole (raw text if undecodable)
    Column("attempts", Integer, nullable=False),
    Column("error_type", String(200), nullable=False),
    Column("error_message", Text, nullable=False),
    Column("traceback", Text, nullable=False),
    Column("fingerprint", String(16), nullable=False),
    Column("first_failed_at", DateTime(timezone=True), nullable=False),
    Column("last_failed_at", DateTime(timezone=True), nullable=False),
    Column("status", String(10), nullable=False),  # 'dead' or 'replayed'
    Column("replayed_at", DateTime(timezone=True)),
    Column("replay_count", Integer, nullable=False, server_default="0"),
    UniqueConstraint("handler", "source", "event_id", name="uq_fleet_dead_letters_event"),
    Index("ix_fleet_dead_letters_fingerprint", "fingerprint"),
    Index("ix_fleet_dead_letters_last_failed_at", "last_failed_at"),
)

outbox = Table(
    "fleet_outbox",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("created_at", Float, nullable=False),
    Column("event", Text, nullable=False),
    Index("ix_fleet_outbox_created_at", "created_at"),
)

demo_deposits = Table(
    "demo_deposits",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("account", String(200), nullable=False),
    Column("amount", BigInteger, nullable=False),
    # Deliberately not unique: the ledger alone must keep deposits exactly-once, and tests count.
    Column("event_id", String(1024), nullable=False),
    Column("recorded_at", Float, nullable=False),  # epoch seconds, set just before commit
    Index("ix_demo_deposits_event_id", "event_id"),
)

event_history = Table(
    "fleet_event_history",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),  # epoch seconds
    Column("event_id", String(1024), nullable=False),
    Column("source", String(1024), nullable=False),
    Column("event_type", String(256), nullable=False),
    Column("handler", String(200), nullable=False),  # the route's task name, or '' before routing
    Column("outcome", String(20), nullable=False),  # see infra/history.py: Outcome
    Column("attempt", Integer, nullable=False),
    Column("correlation_id", String(1024)),
    Column("causation_id", String(1024)),
    Column("detail", Text, nullable=False, server_default=""),
    Column("trace_id", String(32)),  # from the event's traceparent (handlers/trace_context.py)
    Index("ix_fleet_event_history_event_id", "event_id"),
    Index("ix_fleet_event_history_correlation_id", "correlation_id"),
    Index("ix_fleet_event_history_at", "at"),
)
