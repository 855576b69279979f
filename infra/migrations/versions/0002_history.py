"""Event history (the console's timeline).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "fleet_event_history",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("event_id", sa.String(1024), nullable=False),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("event_type", sa.String(256), nullable=False),
        sa.Column("handler", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("correlation_id", sa.String(1024)),
        sa.Column("causation_id", sa.String(1024)),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_fleet_event_history_event_id", "fleet_event_history", ["event_id"])
    op.create_index("ix_fleet_event_history_correlation_id", "fleet_event_history", ["correlation_id"])
    op.create_index("ix_fleet_event_history_at", "fleet_event_history", ["at"])


def downgrade() -> None:
    op.drop_table("fleet_event_history")
