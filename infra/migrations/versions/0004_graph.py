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
    op.create_table(
        "fleet_graph_delta_links",
        sa.Column("resource", sa.String(1000), primary_key=True),
        sa.Column("link", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "fleet_graph_email_sends",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("draft_id", sa.Text),
        sa.Column("sent", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "fleet_graph_changes",
        sa.Column("event_id", sa.String(1024), primary_key=True),
        sa.Column("event_type", sa.String(256), nullable=False),
        sa.Column("resource_id", sa.String(1000), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fleet_graph_changes")
    op.drop_table("fleet_graph_email_sends")
    op.drop_table("fleet_graph_delta_links")
    op.drop_table("fleet_graph_subscriptions")
