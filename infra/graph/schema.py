"""Tables of the Graph domain: subscriptions with their clientState secrets (the webhook reads them)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, String, Table, Text

from infra.schema import metadata

graph_subscriptions = Table(
    "fleet_graph_subscriptions",
    metadata,
    Column("id", String(200), primary_key=True),  # the subscription id Graph assigned
    Column("resource", String(1000), nullable=False),
    Column("change_type", String(200), nullable=False),
    Column("notification_url", Text, nullable=False),
    Column("lifecycle_url", Text),
    Column("client_state", String(255), nullable=False),  # secret; compared in constant time
    Column("include_resource_data", Boolean, nullable=False, server_default="false"),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("status", String(20), nullable=False),  # 'active' or 'removed'
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("last_notification_at", DateTime(timezone=True)),
)
