"""The HTTP payment adapter against the stand-in provider: Idempotency-Key honoured, declines
are results, late answers are retryable, and a retry after a lost answer charges nothing more."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from handlers.errors import RateLimited
from handlers.orders.model import Charge
from infra.orders.payments import HttpPayments, PaymentRejected, PaymentUnavailable
from tests.support.payment_standin import PaymentStandIn


@pytest.fixture
def standin() -> Iterator[PaymentStandIn]:
    server = PaymentStandIn(hang=1.0).start()
    yield server
    server.stop()


@pytest.fixture
def payments(standin: PaymentStandIn) -> Iterator[HttpPayments]:
    client = HttpPayments(standin.url, timeout=0.5)
    yield client
    client.close()


def charge(payments: HttpPayments, key: str, card: str = "tok_visa", amount: int = 500) -> Charge:
    return payments.charge(key=key, amount=amount, currency="EUR", card=card, reference=key.split(":")[1])


def test_the_same_key_gets_the_first_answer_and_moves_money_once(
    payments: HttpPayments, standin: PaymentStandIn
) -> None:
    first = charge(payments, "order:o1:charge")
    again = charge(payments, "order:o1:charge")
    assert first.succeeded and first.charge_id
    assert again == first
    assert standin.requests["order:o1:charge"] == 2
    assert standin.charged() == {"o1": 1}


def test_a_decline_is_a_result_and_stays_a_decline(payments: HttpPayments, standin: PaymentStandIn) -> None:
    assert charge(payments, "order:o2:charge", card="tok_declined") == Charge(False, None, "card_declined")
    assert charge(payments, "order:o2:charge", card="tok_declined").reason == "card_declined"
    assert standin.charged() == {}


def test_a_lost_answer_is_retryable_and_the_retry_reads_the_first_charge(
    payments: HttpPayments, standin: PaymentStandIn
) -> None:
    standin.timeout_rate = 1.0  # every key's first answer comes too late
    with pytest.raises(PaymentUnavailable):
        charge(payments, "order:o3:charge")
    assert standin.charged() == {"o3": 1}  # the provider did charge
    assert charge(payments, "order:o3:charge").succeeded
    assert standin.charged() == {"o3": 1}


def test_a_key_reused_for_another_request_is_refused(payments: HttpPayments) -> None:
    charge(payments, "order:o4:charge", amount=500)
    with pytest.raises(PaymentRejected, match="422"):
        charge(payments, "order:o4:charge", amount=700)


def test_a_void_refunds_a_charge_or_blocks_one_still_to_come(
    payments: HttpPayments, standin: PaymentStandIn
) -> None:
    charge(payments, "order:o5:charge")
    assert payments.void(key="order:o5:void", charge_key="order:o5:charge") == "refunded"
    assert payments.void(key="order:o5:void", charge_key="order:o5:charge") == "refunded"  # replayed
    assert payments.void(key="order:o6:void", charge_key="order:o6:charge") == "blocked"
    assert charge(payments, "order:o6:charge") == Charge(False, None, "voided")
    assert standin.charged() == {}


def test_a_throttle_waits_its_retry_after_given_in_seconds_or_as_an_http_date(
    payments: HttpPayments, standin: PaymentStandIn
) -> None:
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    standin.throttles = ["7", in_a_minute, "-3", "soon", None]
    waits = []
    for _ in range(5):
        with pytest.raises(RateLimited) as caught:
            charge(payments, "order:o9:charge")
        waits.append(caught.value.retry_after)
    assert waits[0] == 7.0
    assert 55.0 <= waits[1] <= 60.0
    assert waits[2:] == [1.0, 1.0, 1.0]  # not a valid Retry-After: the adapter's default wait
    assert charge(payments, "order:o9:charge").succeeded  # the throttle over, the charge goes through
    assert standin.charged() == {"o9": 1}
