"""The tickets' table and the adapters that write it."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Boolean, Column, Engine, Float, MetaData, String, Table, update

metadata = MetaData()

tickets = Table(
    "tickets",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("title", String(500), nullable=False),
    Column("customer", String(200), nullable=False),
    Column("opened_at", Float, nullable=False),
    Column("acknowledged", Boolean, nullable=False, default=False),
)


class SqlTicketBook:
    """Buffers new tickets; the fleet inserts them with the ledger row (an insert port)."""

    table = tickets

    def __init__(self) -> None:
        self._rows: list[dict[str, Any]] = []

    def add(self, *, ticket_id: str, title: str, customer: str) -> None:
        self._rows.append({"id": ticket_id, "title": title, "customer": customer, "acknowledged": False})

    def take(self) -> list[dict[str, Any]]:
        rows, self._rows = self._rows, []
        for row in rows:
            row["opened_at"] = time.time()
        return rows


class SqlAcknowledgements:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def acknowledge(self, ticket_id: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(update(tickets).where(tickets.c.id == ticket_id).values(acknowledged=True))
