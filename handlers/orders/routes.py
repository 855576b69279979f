"""The order saga's rows of the routing table."""

from __future__ import annotations

from handlers.orders import data, saga
from handlers.retry import RetryPolicy
from handlers.routing import BreakerPolicy, Idempotency, Route

_QUEUE = "fleet.orders"
# Lock waits and a busy provider pass: quick retries, a few more than the default.
_STEP_RETRY = RetryPolicy(max_attempts=8, base_delay=0.5, max_delay=15.0)

ROUTES: tuple[Route, ...] = (
    Route(
        type="orders.order_placed",
        handler=saga.place_order,
        task="fleet.orders.place",
        queue=_QUEUE,
        idempotency=Idempotency.TRANSACTIONAL,
        data=data.OrderPlaced,
        retry=_STEP_RETRY,
    ),
    Route(
        type="orders.payment_requested",
        handler=saga.charge_payment,
        task="fleet.orders.charge",
        queue=_QUEUE,
        idempotency=Idempotency.TRANSACTIONAL,
        data=data.PaymentRequested,
        retry=_STEP_RETRY,
        downstream="payments",
        breaker=BreakerPolicy(failure_ratio=0.5, min_calls=20, window=30.0, cooldown=10.0),
    ),
    Route(
        type="orders.cancel_requested",
        handler=saga.cancel_order,
        task="fleet.orders.cancel",
        queue=_QUEUE,
        idempotency=Idempotency.TRANSACTIONAL,
        data=data.CancelRequested,
        retry=_STEP_RETRY,
    ),
    Route(
        type="orders.order_timed_out",
        handler=saga.time_out_order,
        task="fleet.orders.time_out_order",
        queue=_QUEUE,
        idempotency=Idempotency.TRANSACTIONAL,
        data=data.OrderTimedOut,
        retry=_STEP_RETRY,
    ),
    Route(
        type="orders.charge_void_requested",
        handler=saga.void_charge,
        task="fleet.orders.void_charge",
        queue=_QUEUE,
        idempotency=Idempotency.TRANSACTIONAL,
        data=data.ChargeVoidRequested,
        retry=_STEP_RETRY,
        downstream="payments",
    ),
    Route(
        type="orders.order_confirmed",
        handler=saga.record_outcome,
        task="fleet.orders.record_confirmed",
        queue=_QUEUE,
        idempotency=Idempotency.TRANSACTIONAL,
        data=data.OrderConfirmed,
    ),
    Route(
        type="orders.order_cancelled",
        handler=saga.record_outcome,
        task="fleet.orders.record_cancelled",
        queue=_QUEUE,
        idempotency=Idempotency.TRANSACTIONAL,
        data=data.OrderCancelled,
    ),
)
