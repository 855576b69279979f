"""The idempotency ledger: which handler has taken effect for which event.

A row per (handler, event key), where the key is blake2b-128 of the event's `source` and `id`
(fixed width, so the primary key stays small however long producers make their ids).

- Transactional mode: `record()` inserts `done` rows with ON CONFLICT DO NOTHING on the caller's
  connection, inside the transaction that also holds the handler's effects; only the keys it
  inserted are fresh. A concurrent duplicate blocks on the key until the first commits, then
  finds it taken: exactly one transaction takes effect.
- Claim/complete mode: `claim()` commits a `claimed` row with a lease before the external effect;
  `complete()` turns it `done` after. A claim whose lease ran out, or that the same message holds
  (a redelivery after its worker died), is taken over; a live claim of another message is busy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, Engine, and_, delete, or_, select, update

from engine.records import Claims, Key, digest
from infra.db import insert_for, insert_rows
from infra.schema import processed_events as ledger


class SqlLedger:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert = insert_for(engine, ledger)

    def record(self, connection: Connection, handler: str, keys: Sequence[Key], now: float) -> set[Key]:
        """Transactional mode: mark `keys` done on `connection`; returns the ones not done before."""
        by_digest = {digest(key): key for key in keys}
        rows = [
            {"handler": handler, "event_key": d, "status": "done", "processed_at": now} for d in by_digest
        ]
        inserted = insert_rows(
            connection, ledger, rows, skip_conflicts_on=("handler", "event_key"), returning="event_key"
        )
        return {by_digest[event_key] for event_key in inserted}

    def claim(self, handler: str, keys: Sequence[Key], owner: str, lease: float, now: float) -> Claims:
        """Claim mode: take a lease on each key that is neither done nor held by another live message."""
        by_digest = {digest(key): key for key in keys}
        statement = self._insert.values(
            [
                {
                    "handler": handler,
                    "event_key": d,
                    "status": "claimed",
                    "owner": owner,
                    "lease_until": now + lease,
                    "processed_at": now,
                }
                for d in by_digest
            ]
        )
        statement = statement.on_conflict_do_update(
            index_elements=["handler", "event_key"],
            set_={"owner": statement.excluded.owner, "lease_until": statement.excluded.lease_until},
            where=and_(
                ledger.c.status == "claimed", or_(ledger.c.lease_until < now, ledger.c.owner == owner)
            ),
        ).returning(ledger.c.event_key)
        claims = Claims()
        with self._engine.begin() as connection:
            claims.claimed = {by_digest[row[0]] for row in connection.execute(statement)}
            rest = [d for d, key in by_digest.items() if key not in claims.claimed]
            if rest:
                query = select(ledger.c.event_key, ledger.c.status, ledger.c.lease_until).where(
                    ledger.c.handler == handler, ledger.c.event_key.in_(rest)
                )
                for event_key, status, lease_until in connection.execute(query):
                    key = by_digest[event_key]
                    if status == "done":
                        claims.done.add(key)
                    else:
                        claims.busy[key] = max(0.0, float(lease_until) - now)
        return claims

    def complete(
        self, connection: Connection, handler: str, keys: Iterable[Key], owner: str, now: float
    ) -> int:
        """Claim mode: turn this owner's claims on `keys` into done rows; returns how many it still held."""
        digests = [digest(key) for key in keys]
        if not digests:
            return 0
        statement = (
            update(ledger)
            .where(ledger.c.handler == handler, ledger.c.event_key.in_(digests), ledger.c.owner == owner)
            .values(status="done", owner=None, lease_until=None, processed_at=now)
        )
        return connection.execute(statement).rowcount

    def release(self, handler: str, key: Key, owner: str) -> None:
        """Claim mode: give up a claim after a failed attempt, so that the retry can claim it."""
        with self._engine.begin() as connection:
            connection.execute(
                delete(ledger).where(
                    ledger.c.handler == handler,
                    ledger.c.event_key == digest(key),
                    ledger.c.status == "claimed",
                    ledger.c.owner == owner,
                )
            )

    def is_done(self, handler: str, key: Key) -> bool:
        with self._engine.connect() as connection:
            status = connection.execute(
                select(ledger.c.status).where(ledger.c.handler == handler, ledger.c.event_key == digest(key))
            ).scalar()
        return status == "done"
