"""Which exceptions mean the fleet's own infrastructure failed, not the event or its handler.

When the database, Redis or the broker cannot be reached, or the database aborts a transaction
(deadlock, serialization failure), the event is not at fault: the whole message goes back to the
broker and runs again later, and no event spends an attempt or reaches the dead-letter queue.
"""

from __future__ import annotations

import kombu.exceptions
import psycopg
import redis.exceptions
import sqlalchemy.exc

INFRASTRUCTURE_FAILURES: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,  # connection lost or refused, deadlock, serialization failure
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,  # no pooled connection in time
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,
    # The driver's own, where a path reaches it without SQLAlchemy's translation (a pool's connect)
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


def is_infrastructure_failure(exc: BaseException) -> bool:
    return isinstance(exc, INFRASTRUCTURE_FAILURES)
