"""Tables of the Graph domain: subscriptions with their clientState secrets (the webhook reads them),
delta links per resource, email sends (draft ids) and the change journal."""

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

graph_delta_links = Table(
    "fleet_graph_delta_links",
    metadata,
    Column("resource", String(1000), primary_key=True),
    Column("link", Text),  # None: the next resync starts from the top
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

graph_email_sends = Table(
    "fleet_graph_email_sends",
    metadata,
    Column("key", String(64), primary_key=True),  # the email key (handlers/graph/email.py)
    Column("draft_id", Text),
    Column("sent", Boolean, nullable=False, server_default="false"),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

graph_changes = Table(
    "fleet_graph_changes",
    metadata,
    Column("event_id", String(1024), primary_key=True),
    Column("event_type", String(256), nullable=False),
    Column("resource_id", String(1000), nullable=False),
    Column("data", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)
