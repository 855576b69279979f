"""Dramatiq, the benchmark's second yardstick: 2 processes x 8 threads on a Redis broker, one actor
doing the fleet's idempotent insert, one event per message.

The actor writes what the fleet's deposit handler writes, exactly once, as the fleet does it: one
statement in autocommit inserting the ledger row (`ON CONFLICT DO NOTHING`) and the deposit row
only if the ledger row was new (infra/guarded_writes.py). Dramatiq's defaults otherwise.

Run workers with `dramatiq bench.dramatiq_baseline --processes 2 --threads 8 --queues Q`; the
broker comes from `BENCH_DRAMATIQ_REDIS_URL` and `BENCH_DRAMATIQ_NAMESPACE`, the database from
`BENCH_DATABASE_URL`, read when the module is imported (Dramatiq's CLI imports it in every
process, and actors are declared on the broker at import).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from typing import Any

import dramatiq
import psycopg
from dramatiq.brokers.redis import RedisBroker

QUEUE = "bench-deposits"
PROCESSES = 2
THREADS = 8
HANDLER = "bench.dramatiq.deposit"

_INSERT = """
WITH fresh AS (
    INSERT INTO fleet_processed_events (handler, event_key, status, processed_at)
    VALUES (%(handler)s, %(key)s, 'done', %(now)s) ON CONFLICT DO NOTHING RETURNING event_key
)
INSERT INTO demo_deposits (account, amount, event_id, recorded_at)
SELECT %(account)s, %(amount)s, %(event_id)s, %(now)s FROM fresh
"""


broker = RedisBroker(  # type: ignore[no-untyped-call]  # Dramatiq leaves its __init__ untyped
    url=os.environ["BENCH_DRAMATIQ_REDIS_URL"], namespace=os.environ["BENCH_DRAMATIQ_NAMESPACE"]
)
dramatiq.set_broker(broker)
_local = threading.local()


def _connection() -> Any:
    """One autocommit connection per worker thread, made on first use."""
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = psycopg.connect(os.environ["BENCH_DATABASE_URL"], autocommit=True)
        _local.connection = connection
    return connection


@dramatiq.actor(queue_name=QUEUE, max_retries=3)
def record_deposit(source: str, event_id: str, account: str, amount: int) -> None:
    key = hashlib.blake2b(f"{source}\x00{event_id}".encode(), digest_size=16).hexdigest()
    params = {
        "handler": HANDLER,
        "key": key,
        "now": time.time(),
        "account": account,
        "amount": amount,
        "event_id": event_id,
    }
    _connection().execute(_INSERT, params)
