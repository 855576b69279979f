"""The demo domain's event data: one model per event type, checked at the door (handlers/contracts.py)."""

from __future__ import annotations

from typing import Annotated

import pydantic
from pydantic import ConfigDict, Field

from handlers.contracts import EventData, Integer, PositiveInteger

Account = Annotated[str, Field(min_length=1)]


class DepositRecorded(EventData, event_type="demo.deposit_recorded"):
    """A deposit to record; with `email`, a receipt is asked for."""

    account: Account
    amount: PositiveInteger = Field(description="in minor units")
    email: str | None = None
    work_ms: float | None = Field(default=None, ge=0, description="makes the handler take this long")


class ReceiptRequested(EventData, event_type="demo.receipt_requested"):
    to: str = Field(min_length=1, description="the recipient")
    text: str = ""


class FlakyRequested(EventData, event_type="demo.flaky_requested"):
    """A deposit whose downstream fails for the first `fail_times` attempts."""

    account: Account
    amount: PositiveInteger = Field(description="in minor units")
    fail_times: Integer = Field(default=0, ge=0)
    retry_after: float | None = Field(default=None, ge=0)
    needs: str | None = Field(default=None, description="a downstream that must be up")


class CrashRequested(EventData, event_type="demo.crash_requested"):
    """Kills the worker; with `crash: false`, a deposit (then `account` and `amount` are required)."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"properties": {"crash": {"const": True}}},
                {
                    "required": ["account", "amount"],
                    "properties": {"account": {"type": "string"}, "amount": {"type": "integer"}},
                },
            ]
        }
    )

    crash: bool = True
    account: Account | None = None
    amount: PositiveInteger | None = None

    @pydantic.model_validator(mode="after")
    def _deposit_when_not_crashing(self) -> CrashRequested:
        if not self.crash and (self.account is None or self.amount is None):
            raise ValueError("a deposit (crash: false) needs account and amount")
        return self
