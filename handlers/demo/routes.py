"""The demo domain's rows of the routing table."""

from __future__ import annotations

from handlers.demo import handlers as demo
from handlers.demo.data import CrashRequested, DepositRecorded, FlakyRequested, ReceiptRequested
from handlers.retry import RetryPolicy
from handlers.routing import BreakerPolicy, Idempotency, Route

ROUTES: tuple[Route, ...] = (
    Route(
        type="demo.deposit_recorded",
        handler=demo.record_deposit,
        task="fleet.demo.record_deposit",
        queue="fleet.demo",
        idempotency=Idempotency.TRANSACTIONAL,
        data=DepositRecorded,
    ),
    Route(
        type="demo.receipt_requested",
        handler=demo.send_receipt,
        task="fleet.demo.send_receipt",
        queue="fleet.demo",
        idempotency=Idempotency.CLAIM,
        data=ReceiptRequested,
        lease=60.0,
    ),
    Route(
        type="demo.flaky_requested",
        handler=demo.record_flaky_deposit,
        task="fleet.demo.record_flaky_deposit",
        queue="fleet.demo",
        idempotency=Idempotency.TRANSACTIONAL,
        data=FlakyRequested,
        retry=RetryPolicy(max_attempts=4, base_delay=0.2, max_delay=2.0),
        downstream="bank",
        breaker=BreakerPolicy(failure_ratio=0.5, min_calls=5, window=10.0, cooldown=2.0),
    ),
    Route(
        type="demo.crash_requested",
        handler=demo.crash_worker,
        task="fleet.demo.crash_worker",
        queue="fleet.demo",
        idempotency=Idempotency.TRANSACTIONAL,
        data=CrashRequested,
        retry=RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=1.0),
    ),
)
