"""The order saga's tables, on the fleet's shared metadata (migration 0005 creates them)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from infra.schema import metadata

_Id = BigInteger().with_variant(Integer(), "sqlite")

order_products = Table(
    "order_products",
    metadata,
    Column("product_id", String(200), primary_key=True),
    Column("price", BigInteger, nullable=False),  # cents
    Column("available", Integer, nullable=False),
    # The last guard: whatever a handler does, stock never goes below zero.
    CheckConstraint("available >= 0", name="ck_order_products_available"),
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(200), primary_key=True),
    Column("customer_id", String(200), nullable=False),
    Column("status", String(20), nullable=False),  # handlers.orders.model.Status
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("card", String(200), nullable=False),  # the provider's card token, never a card number
    Column("charge_id", String(200)),
    Column("reason", Text),
    Column("deadline", Float),  # epoch seconds by which the current step must end
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_orders_status_deadline", "status", "deadline"),
    Index("ix_orders_customer_id", "customer_id"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", String(200), ForeignKey("orders.order_id", ondelete="CASCADE"), primary_key=True),
    Column("product_id", String(200), primary_key=True),
    Column("quantity", Integer, nullable=False),
)

order_timeline = Table(
    "order_timeline",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("order_id", String(200), nullable=False),
    Column("at", Float, nullable=False),
    Column("step", String(40), nullable=False),
    Column("outcome", String(40), nullable=False),
    Column("event_id", String(1024), nullable=False),
    Column("event_type", String(256), nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Index("ix_order_timeline_order_id", "order_id"),
)
