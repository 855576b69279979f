"""One statement that takes effect only for new events: ledger rows, inserts and outbox rows.

For a transactional route whose ports only buffer rows to insert (`InsertPort`), the dispatcher
runs the handlers first, without I/O, and hands their rows here. On PostgreSQL they go to the
database as one statement in autocommit, which is its own transaction:

    WITH fresh AS (INSERT INTO fleet_processed_events ... ON CONFLICT DO NOTHING RETURNING event_key),
         w0 AS (INSERT INTO <table> SELECT ... FROM <rows> r WHERE r._key IN (SELECT * FROM fresh)),
         ...
         outbox AS (INSERT INTO fleet_outbox SELECT ... WHERE r._key IN (...) RETURNING id)
    SELECT 'fresh', event_key ... UNION ALL SELECT 'outbox', id ...

A row of an event whose ledger row existed is filtered out; a concurrent duplicate's INSERT waits
on the key until the first commits, then finds it taken, so exactly one takes effect, as in the
transaction it replaces. One round trip instead of four (BEGIN, ledger, effects, COMMIT).
`<rows>` is a VALUES list of scalar parameters for a few events (cheap to send, and planned once
per shape: psycopg prepares repeated statements), and one array per column through `unnest()`
for a batch. SQLite cannot modify data in a WITH clause: there `supported` is false and the
dispatcher keeps the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Engine, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from engine.records import Applied, EventWrites
from infra.db import pg_array_type
from infra.schema import outbox as outbox_table
from infra.schema import processed_events as ledger_table

VALUES_UP_TO = 8
"""Rows of a table sent as scalar parameters; more go as arrays (one parameter per column)."""

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


class SqlGuardedWrites:
    def __init__(self, engine: Engine) -> None:
        """`engine`: connections in autocommit (the statement is its own transaction)."""
        self._engine = engine
        self.supported = engine.dialect.name == "postgresql"

    def apply(self, handler: str, writes: Sequence[EventWrites], now: float) -> Applied:
        """Record `writes` under `handler`; only the events new to the ledger take effect."""
        statement = _Statement()
        keys = list(dict.fromkeys(write.key for write in writes))
        ledger: dict[str, list[Any]] = {
            "handler": [handler] * len(keys),
            "event_key": keys,
            "status": ["done"] * len(keys),
        }
        ledger["processed_at"] = [now] * len(keys)
        on_conflict = " ON CONFLICT (handler, event_key) DO NOTHING RETURNING event_key"
        statement.add("fresh", ledger_table, ledger, suffix=on_conflict)
        for n, (table, columns) in enumerate(_by_table(writes).items()):
            statement.add(f"w{n}", table, columns, guarded=True)
        follow_ups: dict[str, list[Any]] = {"_key": [], "created_at": [], "event": []}
        for write in writes:
            for body in write.follow_ups:
                follow_ups["_key"].append(write.key)
                follow_ups["created_at"].append(now)
                follow_ups["event"].append(body)
        selects = ["SELECT 'fresh', event_key, NULL::int8 FROM fresh"]
        if follow_ups["_key"]:
            statement.add("outbox", outbox_table, follow_ups, guarded=True, suffix=" RETURNING id")
            selects.append("SELECT 'outbox', NULL, id FROM outbox")
        sql = "WITH " + ",\n".join(statement.parts) + "\n" + " UNION ALL ".join(selects)
        fresh: set[str] = set()
        outbox_ids: list[int] = []
        for kind, key, outbox_id in self._execute(sql, statement.params):
            if kind == "fresh":
                fresh.add(key)
            else:
                outbox_ids.append(outbox_id)
        return Applied(fresh, outbox_ids)

    def _execute(self, sql: str, params: dict[str, Any]) -> list[Any]:
        """Run the driver's SQL on a pooled connection: a SQLAlchemy execution would cost as much
        CPU as the statement itself. Driver errors leave as SQLAlchemy's (infra/failures.py
        knows those), and a connection that broke is not put back."""
        dbapi = self._engine.dialect.loaded_dbapi
        try:
            # The pool's connect is no SQLAlchemy execution: a refused connection leaves it as the
            # driver's error, translated here like the statement's.
            connection = self._engine.raw_connection()
        except dbapi.Error as exc:
            raise DBAPIError.instance(sql, params, exc, dbapi.Error, dialect=self._engine.dialect) from exc
        try:
            return list(connection.driver_connection.execute(sql, params))  # type: ignore[union-attr]
        except dbapi.Error as exc:
            broken = isinstance(exc, dbapi.OperationalError | dbapi.InterfaceError)
            if broken:
                connection.invalidate(exc)
            raise DBAPIError.instance(
                sql, params, exc, dbapi.Error, connection_invalidated=broken, dialect=self._engine.dialect
            ) from exc
        finally:
            connection.close()  # back to the pool (or discarded, when invalidated)


class _Statement:
    """The WITH clauses of one guarded statement and their parameters (psycopg's pyformat)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: dict[str, Any] = {}

    def add(
        self,
        name: str,
        table: Table,
        columns: Mapping[str, list[Any]],
        *,
        guarded: bool = False,
        suffix: str = "",
    ) -> None:
        """`name AS (INSERT INTO table ...)`; `guarded`: only rows whose `_key` is fresh."""
        names = [column for column in columns if column != "_key"]
        count = len(next(iter(columns.values())))
        if count <= VALUES_UP_TO:
            rows = self._values(name, table, columns, count)
        else:
            rows = self._arrays(name, table, columns)
        chosen = ", ".join(f"r.{column}" for column in names)
        sql = f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {chosen} FROM {rows}"  # noqa: S608 - names from our schema
        if guarded:
            sql += " WHERE r._key IN (SELECT event_key FROM fresh)"
        self.parts.append(f"{name} AS ({sql}{suffix})")

    def _values(self, name: str, table: Table, columns: Mapping[str, list[Any]], count: int) -> str:
        rows = []
        for n in range(count):
            cells = [
                f"CAST({self._param(f'{name}_{n}_{column}', values[n])} AS {_sql_type(table, column)})"
                for column, values in columns.items()
            ]
            rows.append("(" + ", ".join(cells) + ")")
        return f"(VALUES {', '.join(rows)}) AS r({', '.join(columns)})"

    def _arrays(self, name: str, table: Table, columns: Mapping[str, list[Any]]) -> str:
        arrays = [
            f"CAST({self._param(f'{name}_{column}', values)} AS {_array_type(table, column)})"
            for column, values in columns.items()
        ]
        return f"unnest({', '.join(arrays)}) AS r({', '.join(columns)})"

    def _param(self, name: str, value: Any) -> str:
        self.params[name] = value
        return f"%({name})s"


@cache
def _sql_type(table: Table, column: str) -> str:
    return "TEXT" if column == "_key" else str(table.c[column].type.compile(dialect=_DIALECT))


def _array_type(table: Table, column: str) -> str:
    return "text[]" if column == "_key" else pg_array_type(table, column)


def _by_table(writes: Sequence[EventWrites]) -> dict[Table, dict[str, list[Any]]]:
    """Each table's rows as one list per column, with `_key` naming the event of each row."""
    tables: dict[Table, dict[str, list[Any]]] = {}
    for write in writes:
        for table, rows in write.rows:
            for row in rows:
                columns = tables.setdefault(table, {"_key": [], **{name: [] for name in row}})
                columns["_key"].append(write.key)
                for name, value in row.items():
                    columns[name].append(value)
    return tables
