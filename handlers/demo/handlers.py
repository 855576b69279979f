"""Demo handlers. Each declares its idempotency mode in the registry; the docstrings say why.

Each takes its event's data as its route's model (`data`, handlers/demo/data.py), parsed and
checked by the engine before the handler runs.
"""

from __future__ import annotations

import os

from handlers.demo.data import CrashRequested, DepositRecorded, FlakyRequested, ReceiptRequested
from handlers.demo.ports import DepositBook, DownstreamSwitch, ReceiptSender
from handlers.envelope import Event, follow_up
from handlers.errors import RateLimited, RetryableError
from handlers.ports import Clock


def record_deposit(
    event: Event, *, data: DepositRecorded, deposits: DepositBook, clock: Clock
) -> list[Event]:
    """Record a deposit; asks for a receipt when the data names an email address.

    Transactional: the deposit row commits with the ledger row, so a redelivery is a no-op.
    `work_ms` in the data makes the handler take that long (for crash tests and benchmarks).
    """
    if data.work_ms:
        clock.sleep(data.work_ms / 1000)
    deposits.add(account=data.account, amount=data.amount, event_id=event.id)
    if not data.email:
        return []
    receipt = {"to": data.email, "text": f"{data.amount} deposited to {data.account}"}
    return [follow_up(event, "demo.receipt_requested", receipt, id=f"{event.id}/receipt")]


def send_receipt(event: Event, *, data: ReceiptRequested, receipts: ReceiptSender) -> None:
    """Send a receipt through an outside system.

    Claim/complete: the send cannot join a database transaction, so the event is claimed under a
    lease before the send and marked complete after it; the event id is passed on as the
    downstream's idempotency key for the window between the send and the completion.
    """
    receipts.send(to=data.to, text=data.text, key=event.id)


def record_flaky_deposit(
    event: Event, *, data: FlakyRequested, attempt: int, deposits: DepositBook, downstream: DownstreamSwitch
) -> None:
    """A deposit whose downstream fails for the first `fail_times` attempts, and while the
    downstream named by `needs` is down. With `retry_after` in the data the failure is a rate
    limit with that delay. Transactional.
    """
    if data.needs and not downstream.is_up(data.needs):
        raise RetryableError(f"downstream {data.needs} is down")
    if attempt <= data.fail_times:
        if data.retry_after is not None:
            raise RateLimited(data.retry_after)
        raise RetryableError(f"downstream unavailable (attempt {attempt})")
    deposits.add(account=data.account, amount=data.amount, event_id=event.id)


def crash_worker(event: Event, *, data: CrashRequested, deposits: DepositBook) -> None:
    """Kill the worker process, as an OOM kill or a segfault would: the poison message that
    proves the attempt counter survives redeliveries. With `"crash": false` it records a
    deposit instead, so its queue can be seen flowing. Transactional.
    """
    if data.crash:
        os._exit(70)
    assert data.account is not None and data.amount is not None  # the model requires them then
    deposits.add(account=data.account, amount=data.amount, event_id=event.id)
