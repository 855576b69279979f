"""One statement that takes effect only for new events: ledger rows, inserts and outbox rows.

For a transactional route whose ports only buffer rows to insert (`InsertPort`), the dispatcher
runs the handlers first, without I/O, and hands their rows here. On PostgreSQL they go to the
database as one statement in autocommit, which is its own transaction:

    WITH fresh AS (INSERT INTO fleet_processed_events ... ON CONFLICT DO NOTHING RETURNING event_key),
         w0 AS (INSERT INTO <table> SELECT ... FROM unnest(...) u WHERE u._key IN (SELECT * FROM fresh)),
         ...
         outbox AS (INSERT INTO fleet_outbox SELECT ... WHERE u._key IN (...) RETURNING id)
    SELECT 'fresh', event_key ... UNION ALL SELECT 'outbox', id ...

A row of an event whose ledger row existed is filtered out; a concurrent duplicate's INSERT waits
on the key until the first commits, then finds it taken, so exactly one takes effect, as in the
transaction it replaces. One round trip instead of four (BEGIN, ledger, effects, COMMIT).
SQLite cannot modify data in a WITH clause: there `supported` is false and the dispatcher keeps
the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, Engine, Float, Integer, Table, text
from sqlalchemy.sql.elements import TextClause

from infra.schema import outbox as outbox_table
from infra.schema import processed_events as ledger_table

_PG_ARRAY = {BigInteger: "int8[]", Integer: "int4[]", Float: "float8[]"}


@dataclass
class EventWrites:
    """What one event's handler asked for: rows per table, and follow-up events (JSON text)."""

    key: str
    """The event's ledger key (infra/ledger.py `digest`)."""
    rows: list[tuple[Table, list[dict[str, Any]]]] = field(default_factory=list)
    follow_ups: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Applied:
    fresh: set[str]
    """Ledger keys inserted now: their events took effect."""
    outbox_ids: list[int]


class SqlGuardedWrites:
    def __init__(self, engine: Engine) -> None:
        """`engine`: connections in autocommit (the statement is its own transaction)."""
        self._engine = engine
        self.supported = engine.dialect.name == "postgresql"

    def apply(self, handler: str, writes: Sequence[EventWrites], now: float) -> Applied:
        """Record `writes` under `handler`; only the events new to the ledger take effect."""
        parts: list[str] = []
        params: dict[str, Any] = {}
        keys = list(dict.fromkeys(write.key for write in writes))
        ledger_rows: dict[str, list[Any]] = {
            "handler": [handler] * len(keys),
            "event_key": keys,
            "status": ["done"] * len(keys),
            "processed_at": [now] * len(keys),
        }
        parts.append(
            f"fresh AS ({_insert(ledger_table, ledger_rows, 'l', params)}"
            " ON CONFLICT (handler, event_key) DO NOTHING RETURNING event_key)"
        )
        for n, (table, columns) in enumerate(_by_table(writes).items()):
            parts.append(f"w{n} AS ({_insert(table, columns, f'w{n}', params, guarded=True)})")
        follow_ups: dict[str, list[Any]] = {"_key": [], "created_at": [], "event": []}
        for write in writes:
            for body in write.follow_ups:
                follow_ups["_key"].append(write.key)
                follow_ups["created_at"].append(now)
                follow_ups["event"].append(body)
        selects = ["SELECT 'fresh', event_key, NULL::int8 FROM fresh"]
        if follow_ups["_key"]:
            insert = _insert(outbox_table, follow_ups, "o", params, guarded=True)
            parts.append(f"outbox AS ({insert} RETURNING id)")
            selects.append("SELECT 'outbox', NULL, id FROM outbox")
        sql = "WITH " + ",\n".join(parts) + "\n" + " UNION ALL ".join(selects)
        fresh: set[str] = set()
        outbox_ids: list[int] = []
        with self._engine.connect() as connection:
            for kind, key, outbox_id in connection.execute(_statement(sql), params):
                if kind == "fresh":
                    fresh.add(key)
                else:
                    outbox_ids.append(outbox_id)
        return Applied(fresh, outbox_ids)


@lru_cache(maxsize=256)
def _statement(sql: str) -> TextClause:
    """One TextClause per shape of batch: parsing its parameters once, not per message."""
    return text(sql)


def _by_table(writes: Sequence[EventWrites]) -> dict[Table, dict[str, list[Any]]]:
    """Each table's rows as one array per column, with `_key` naming the event of each row."""
    tables: dict[Table, dict[str, list[Any]]] = {}
    for write in writes:
        for table, rows in write.rows:
            for row in rows:
                columns = tables.setdefault(table, {"_key": [], **{name: [] for name in row}})
                columns["_key"].append(write.key)
                for name, value in row.items():
                    columns[name].append(value)
    return tables


def _insert(
    table: Table, columns: Mapping[str, list[Any]], tag: str, params: dict[str, Any], *, guarded: bool = False
) -> str:
    """INSERT ... SELECT FROM unnest(one array per column); `guarded`: only rows of fresh events."""
    names = [name for name in columns if name != "_key"]
    arrays = []
    for name in columns:
        params[f"{tag}_{name}"] = columns[name]
        kind = "text[]" if name == "_key" else _PG_ARRAY.get(type(table.c[name].type), "text[]")
        arrays.append(f"CAST(:{tag}_{name} AS {kind})")
    aliases = ", ".join(f'"{name}"' for name in columns)
    source = f"unnest({', '.join(arrays)}) AS u({aliases})"
    chosen = ", ".join(f'u."{name}"' for name in names)
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {chosen} FROM {source}"  # noqa: S608 - names from our schema
    if guarded:
        sql += " WHERE u._key IN (SELECT event_key FROM fresh)"
    return sql
