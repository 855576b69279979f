"""Event history keeps each event's trace id (from its traceparent), for the console's trace link.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("fleet_event_history", sa.Column("trace_id", sa.String(32)))


def downgrade() -> None:
    op.drop_column("fleet_event_history", "trace_id")
