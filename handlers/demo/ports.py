"""Ports of the demo domain."""

from __future__ import annotations

from typing import Protocol


class DepositBook(Protocol):
    """Deposits, written in the same transaction as the ledger row."""

    def add(self, *, account: str, amount: int, event_id: str) -> None: ...


class ReceiptSender(Protocol):
    """An effect outside the database (think: an email gateway)."""

    def send(self, *, to: str, text: str, key: str) -> None: ...


class DownstreamSwitch(Protocol):
    """Whether a (pretend) downstream is up: lets a demo outage start and end."""

    def is_up(self, name: str) -> bool: ...
