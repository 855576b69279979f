"""The fleet core: idempotency ledger, dead letters, outbox, demo deposits.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "fleet_processed_events",
        sa.Column("handler", sa.String(200), primary_key=True),
        sa.Column("event_key", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("owner", sa.String(64)),
        sa.Column("lease_until", sa.Float),
        sa.Column("processed_at", sa.Float, nullable=False),
    )
    op.create_table(
        "fleet_dead_letters",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("handler", sa.String(200), nullable=False),
        sa.Column("event_type", sa.String(256), nullable=False),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("event_id", sa.String(1024), nullable=False),
        sa.Column("queue", sa.String(200), nullable=False),
        sa.Column("envelope", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error_type", sa.String(200), nullable=False),
        sa.Column("error_message", sa.Text, nullable=False),
        sa.Column("traceback", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(16), nullable=False),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True)),
        sa.Column("replay_count", sa.Integer, nullable=False, server_default="0"),
        sa.UniqueConstraint("handler", "source", "event_id", name="uq_fleet_dead_letters_event"),
    )
    op.create_index("ix_fleet_dead_letters_fingerprint", "fleet_dead_letters", ["fingerprint"])
    op.create_index("ix_fleet_dead_letters_last_failed_at", "fleet_dead_letters", ["last_failed_at"])
    op.create_table(
        "fleet_outbox",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("event", sa.Text, nullable=False),
    )
    op.create_index("ix_fleet_outbox_created_at", "fleet_outbox", ["created_at"])
    op.create_table(
        "demo_deposits",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.String(1024), nullable=False),
        sa.Column("recorded_at", sa.Float, nullable=False),
    )
    op.create_index("ix_demo_deposits_event_id", "demo_deposits", ["event_id"])


def downgrade() -> None:
    op.drop_table("demo_deposits")
    op.drop_table("fleet_outbox")
    op.drop_table("fleet_dead_letters")
    op.drop_table("fleet_processed_events")
