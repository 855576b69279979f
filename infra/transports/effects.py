"""Whether events handed to the fleet have run: the ledger says `done`, or the dead-letter queue
holds them. A Service Bus session bridge waits on it so that a session's next batch is never
run beside, or before, the one handed over ahead of it."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, select, tuple_

from engine.records import digest
from infra.schema import dead_letters, processed_events

EventKey = tuple[str, str]
"""(source, id)"""


class SqlEffects:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def unsettled(self, events: Sequence[tuple[str, EventKey]]) -> list[tuple[str, EventKey]]:
        """The (handler, key) pairs that neither took effect nor were dead-lettered yet."""
        if not events:
            return []
        by_digest = {(handler, digest(key)): (handler, key) for handler, key in events}
        with self._engine.connect() as connection:
            done = connection.execute(
                select(processed_events.c.handler, processed_events.c.event_key).where(
                    tuple_(processed_events.c.handler, processed_events.c.event_key).in_(list(by_digest)),
                    processed_events.c.status == "done",
                )
            )
            left = set(by_digest) - {(row[0], row[1]) for row in done}
            if not left:
                return []
            wanted = [by_digest[pair] for pair in left]
            dead = connection.execute(
                select(dead_letters.c.handler, dead_letters.c.source, dead_letters.c.event_id).where(
                    tuple_(dead_letters.c.handler, dead_letters.c.source, dead_letters.c.event_id).in_(
                        [(handler, *key) for handler, key in wanted]
                    )
                )
            )
            buried = {(row[0], (row[1], row[2])) for row in dead}
        return [pair for pair in wanted if pair not in buried]
