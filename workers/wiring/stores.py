"""The fleet's own state: ledger, outbox, dead letters, history, attempts, delayed retries,
heartbeats; in PostgreSQL and Redis."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from redis import Redis
from sqlalchemy import Engine

from infra.attempts import RedisAttempts
from infra.db import make_engine
from infra.dead_letters import SqlDeadLetters
from infra.delayed import RedisDelayed
from infra.guarded_writes import SqlGuardedWrites
from infra.heartbeats import RedisHeartbeats
from infra.history import BufferedHistory, DroppedHistory, SqlHistory
from infra.ledger import SqlLedger
from infra.outbox import SqlOutbox
from infra.settings import Settings
from infra.transactions import SqlTransactions


@dataclass
class Stores:
    settings: Settings
    engine: Engine
    redis: Redis

    @cached_property
    def autocommit_engine(self) -> Engine:
        """Connections in autocommit, for single statements that are transactions by themselves
        (infra/guarded_writes.py): no BEGIN, no COMMIT, nothing to reset on return."""
        return make_engine(
            self.settings.database_url,
            isolation_level="AUTOCOMMIT",
            pool_reset_on_return=None,
            pool_size=2,
            max_overflow=2,
        )

    @cached_property
    def transactions(self) -> SqlTransactions:
        return SqlTransactions(self.engine)

    @cached_property
    def guarded_writes(self) -> SqlGuardedWrites:
        return SqlGuardedWrites(self.autocommit_engine)

    @cached_property
    def ledger(self) -> SqlLedger:
        return SqlLedger(self.engine)

    @cached_property
    def outbox(self) -> SqlOutbox:
        return SqlOutbox(self.engine)

    @cached_property
    def dead_letters(self) -> SqlDeadLetters:
        return SqlDeadLetters(self.engine)

    @cached_property
    def history(self) -> SqlHistory:
        return SqlHistory(self.engine)

    @cached_property
    def history_writer(self) -> BufferedHistory:
        # Beside the other processes of this host and fleet, which count a killed one's entries.
        pending = Path(tempfile.gettempdir()) / f"fleet-{self.settings.key_prefix}" / "history"
        return BufferedHistory(self.history, dropped=self.dropped_history.add, pending_dir=pending)

    @cached_property
    def dropped_history(self) -> DroppedHistory:
        return DroppedHistory(self.redis, self.settings.key_prefix)

    @cached_property
    def heartbeats(self) -> RedisHeartbeats:
        return RedisHeartbeats(self.redis, self.settings.key_prefix)

    @cached_property
    def attempts(self) -> RedisAttempts:
        return RedisAttempts(self.redis, self.settings.key_prefix)

    @cached_property
    def delayed(self) -> RedisDelayed:
        return RedisDelayed(self.redis, self.settings.key_prefix)

    @cached_property
    def broker_redis(self) -> Redis:
        """The Redis broker, read directly (queue peeks); the coordination client when they agree."""
        if self.settings.broker_url == self.settings.coordination_url:
            return self.redis
        return Redis.from_url(self.settings.broker_url)

    def dispose_after_fork(self) -> None:
        """Leave the parent's connections to the parent."""
        if "autocommit_engine" in self.__dict__:
            self.autocommit_engine.dispose(close=False)

    def close(self) -> None:
        if "autocommit_engine" in self.__dict__:
            self.autocommit_engine.dispose()
