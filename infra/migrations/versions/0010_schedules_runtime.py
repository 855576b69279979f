"""Runtime schedules: the jobs added, changed or removed while the fleet runs (`fleet schedules
add|set|remove`, the console), over the `FLEET_SCHEDULES` seed.

Revision ID: 0010
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_schedules",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("entry", sa.Text, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fleet_schedules")
