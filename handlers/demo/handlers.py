"""Demo handlers. Each declares its idempotency mode in the registry; the docstrings say why."""

from __future__ import annotations

import os
from typing import Any

from handlers.demo.ports import DepositBook, DownstreamSwitch, ReceiptSender
from handlers.envelope import Event, follow_up
from handlers.errors import InvalidEvent, RateLimited, RetryableError
from handlers.ports import Clock


def _deposit_fields(event: Event) -> tuple[str, int]:
    data = event.data
    if not isinstance(data, dict):
        raise InvalidEvent("data", "must be an object with 'account' and 'amount'")
    account, amount = data.get("account"), data.get("amount")
    if not isinstance(account, str) or not account:
        raise InvalidEvent("data.account", "must be a non-empty string")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise InvalidEvent("data.amount", "must be a positive integer")
    return account, amount


def record_deposit(event: Event, *, deposits: DepositBook, clock: Clock) -> list[Event]:
    """Record a deposit; asks for a receipt when the data names an email address.

    Transactional: the deposit row commits with the ledger row, so a redelivery is a no-op.
    `work_ms` in the data makes the handler take that long (for crash tests and benchmarks).
    """
    account, amount = _deposit_fields(event)
    data: dict[str, Any] = event.data
    if work_ms := data.get("work_ms"):
        clock.sleep(float(work_ms) / 1000)
    deposits.add(account=account, amount=amount, event_id=event.id)
    email = data.get("email")
    if not email:
        return []
    receipt = {"to": email, "text": f"{amount} deposited to {account}"}
    return [follow_up(event, "demo.receipt_requested", receipt, id=f"{event.id}/receipt")]


def send_receipt(event: Event, *, receipts: ReceiptSender) -> None:
    """Send a receipt through an outside system.

    Claim/complete: the send cannot join a database transaction, so the event is claimed under a
    lease before the send and marked complete after it; the event id is passed on as the
    downstream's idempotency key for the window between the send and the completion.
    """
    data = event.data
    if not isinstance(data, dict) or not isinstance(data.get("to"), str):
        raise InvalidEvent("data.to", "must name the recipient")
    receipts.send(to=data["to"], text=str(data.get("text", "")), key=event.id)


def record_flaky_deposit(
    event: Event, *, attempt: int, deposits: DepositBook, downstream: DownstreamSwitch
) -> None:
    """A deposit whose downstream fails for the first `fail_times` attempts, and while the
    downstream named by `needs` is down. With `retry_after` in the data the failure is a rate
    limit with that delay. Transactional.
    """
    account, amount = _deposit_fields(event)
    if (needs := event.data.get("needs")) and not downstream.is_up(str(needs)):
        raise RetryableError(f"downstream {needs} is down")
    if attempt <= int(event.data.get("fail_times", 0)):
        if (retry_after := event.data.get("retry_after")) is not None:
            raise RateLimited(float(retry_after))
        raise RetryableError(f"downstream unavailable (attempt {attempt})")
    deposits.add(account=account, amount=amount, event_id=event.id)


def crash_worker(event: Event, *, deposits: DepositBook) -> None:
    """Kill the worker process, as an OOM kill or a segfault would: the poison message that
    proves the attempt counter survives redeliveries. With `"crash": false` it records a
    deposit instead, so its queue can be seen flowing. Transactional.
    """
    if event.data.get("crash", True):
        os._exit(70)
    account, amount = _deposit_fields(event)
    deposits.add(account=account, amount=amount, event_id=event.id)
