"""Microsoft Graph: subscriptions, delta links, email sends.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_graph_subscriptions",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("resource", sa.String(1000), nullable=False),
        sa.Column("change_type", sa.String(200), nullable=False),
        sa.Column("notification_url", sa.Text, nullable=False),
        sa.Column("lifecycle_url", sa.Text),
        sa.Column("client_state", sa.String(255), nullable=False),
        sa.Column("include_resource_data", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_notification_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("fleet_graph_subscriptions")
