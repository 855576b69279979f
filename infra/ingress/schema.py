"""Tables of the HTTP ingress: API keys, stored as hashes."""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, String, Table

from infra.schema import metadata

api_keys = Table(
    "fleet_api_keys",
    metadata,
    Column("id", String(32), primary_key=True),  # public part of the key, shown by `fleet keys list`
    Column("name", String(200), nullable=False),
    Column("secret_hash", String(64), nullable=False),  # sha256 hex of the secret part
    Column("event_types", JSON, nullable=False),  # patterns the key may publish, e.g. ["demo.*"]
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)
