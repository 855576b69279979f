"""Orders saga and stock.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "order_products",
        sa.Column("product_id", sa.String(200), primary_key=True),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("available", sa.Integer, nullable=False),
        sa.CheckConstraint("available >= 0", name="ck_order_products_available"),
    )
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(200), primary_key=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("card", sa.String(200), nullable=False),
        sa.Column("charge_id", sa.String(200)),
        sa.Column("reason", sa.Text),
        sa.Column("deadline", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_orders_status_deadline", "orders", ["status", "deadline"])
    op.create_index("ix_orders_customer_id", "orders", ["customer_id"])
    op.create_table(
        "order_lines",
        sa.Column(
            "order_id",
            sa.String(200),
            sa.ForeignKey("orders.order_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("product_id", sa.String(200), primary_key=True),
        sa.Column("quantity", sa.Integer, nullable=False),
    )
    op.create_table(
        "order_timeline",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(200), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("step", sa.String(40), nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("event_id", sa.String(1024), nullable=False),
        sa.Column("event_type", sa.String(256), nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_order_timeline_order_id", "order_timeline", ["order_id"])


def downgrade() -> None:
    op.drop_table("order_timeline")
    op.drop_table("order_lines")
    op.drop_table("orders")
    op.drop_table("order_products")
