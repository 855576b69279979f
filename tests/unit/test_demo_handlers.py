"""The demo handlers with in-memory fakes: no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from handlers.contracts import parse_data
from handlers.demo.data import DepositRecorded, FlakyRequested, ReceiptRequested
from handlers.demo.handlers import record_deposit, record_flaky_deposit, send_receipt
from handlers.envelope import Event, new_event
from handlers.errors import InvalidEvent, RateLimited, RetryableError
from handlers.registry import Registry


@dataclass
class FakeBook:
    rows: list[tuple[str, int, str]] = field(default_factory=list)

    def add(self, *, account: str, amount: int, event_id: str) -> None:
        self.rows.append((account, amount, event_id))


@dataclass
class FakeClock:
    slept: float = 0.0

    def now(self) -> float:
        return 1000.0

    def sleep(self, seconds: float) -> None:
        self.slept += seconds


@dataclass
class FakeSwitch:
    down: set[str] = field(default_factory=set)

    def is_up(self, name: str) -> bool:
        return name not in self.down


def deposit(**data: object) -> tuple[Event, DepositRecorded]:
    event = new_event("demo.deposit_recorded", {"account": "a-1", "amount": 5, **data}, source="t", id="d-1")
    return event, DepositRecorded.model_validate(event.data)


def test_a_deposit_is_recorded_and_asks_for_a_receipt_with_a_derived_id() -> None:
    book, clock = FakeBook(), FakeClock()
    event, data = deposit(email="x@example.com", work_ms=20)
    follow_ups = record_deposit(event, data=data, deposits=book, clock=clock)
    assert book.rows == [("a-1", 5, "d-1")]
    assert clock.slept == pytest.approx(0.02)
    [receipt] = follow_ups
    assert (receipt.type, receipt.id, receipt.causationid) == ("demo.receipt_requested", "d-1/receipt", "d-1")
    event, data = deposit()
    assert record_deposit(event, data=data, deposits=FakeBook(), clock=clock) == []


@pytest.mark.parametrize(
    ("data", "field"),
    [({"amount": -1}, "data.amount"), ({"account": ""}, "data.account"), ({"amount": True}, "data.amount")],
)
def test_a_bad_deposit_is_a_permanent_error_naming_the_field(data: dict[str, object], field: str) -> None:
    route = Registry().route_for("demo.deposit_recorded")
    with pytest.raises(InvalidEvent) as caught:
        parse_data(route, {"account": "a-1", "amount": 5, **data})
    assert caught.value.field == field


def flaky(**data: object) -> tuple[Event, FlakyRequested]:
    event = new_event("demo.flaky_requested", {"account": "a", "amount": 1, **data}, source="t", id="f")
    return event, FlakyRequested.model_validate(event.data)


def test_the_flaky_deposit_fails_for_its_first_attempts_then_records() -> None:
    book, switch = FakeBook(), FakeSwitch()
    event, data = flaky(fail_times=2)
    for attempt in (1, 2):
        with pytest.raises(RetryableError):
            record_flaky_deposit(event, data=data, attempt=attempt, deposits=book, downstream=switch)
    record_flaky_deposit(event, data=data, attempt=3, deposits=book, downstream=switch)
    assert book.rows == [("a", 1, "f")]


def test_the_flaky_deposit_passes_on_a_retry_after_and_an_outage() -> None:
    event, data = flaky(fail_times=1, retry_after=7)
    with pytest.raises(RateLimited) as caught:
        record_flaky_deposit(event, data=data, attempt=1, deposits=FakeBook(), downstream=FakeSwitch())
    assert caught.value.retry_after == 7
    event, data = flaky(needs="bank")
    with pytest.raises(RetryableError, match="bank is down"):
        record_flaky_deposit(
            event, data=data, attempt=1, deposits=FakeBook(), downstream=FakeSwitch({"bank"})
        )


def test_a_receipt_is_sent_with_the_event_id_as_idempotency_key() -> None:
    sent: list[tuple[str, str, str]] = []

    class Sender:
        def send(self, *, to: str, text: str, key: str) -> None:
            sent.append((to, text, key))

    event = new_event("demo.receipt_requested", {"to": "x@y", "text": "hi"}, source="t", id="r-1")
    send_receipt(event, data=ReceiptRequested(to="x@y", text="hi"), receipts=Sender())
    assert sent == [("x@y", "hi", "r-1")]
    with pytest.raises(InvalidEvent, match=r"data\.to: required field is missing"):
        parse_data(Registry().route_for("demo.receipt_requested"), {})
