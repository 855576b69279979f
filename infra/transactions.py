"""Transactions of the fleet's database for the engine (`engine.ports.Transactions`)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, Engine, Table

from infra.db import insert_rows


class SqlTransactions:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def begin(self) -> AbstractContextManager[Connection]:
        return self._engine.begin()

    def insert(self, transaction: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        insert_rows(transaction, table, rows)
