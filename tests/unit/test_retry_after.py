"""`Retry-After` read as RFC 9110 writes it: delay-seconds or an HTTP-date, nonsense ignored."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from infra.retry_after import MAX_RETRY_AFTER, parse_retry_after, retry_after_of

NOW = datetime(2026, 10, 21, 7, 27, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Wed, 21 Oct 2026 07:28:00 GMT", 60.0),
        ("Wed, 21 Oct 2026 07:28:00 -0000", 60.0),  # zone "unknown": taken as GMT
        ("Wednesday, 21-Oct-26 07:28:00 GMT", 60.0),  # the obsolete forms a recipient must accept
        ("Wed Oct 21 07:28:00 2026", 60.0),
        ("Wed, 21 Oct 2026 07:00:00 GMT", 0.0),  # already past: now
        ("99999999", MAX_RETRY_AFTER),
        ("Fri, 01 Jan 2100 00:00:00 GMT", MAX_RETRY_AFTER),
        ("-5", None),
        ("inf", None),
        ("NaN", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date_and_anything_else_is_no_answer(
    value: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_the_field_is_found_whatever_the_case_of_its_name() -> None:
    assert retry_after_of({"retry-after": "3"}) == 3.0
    assert retry_after_of({"Retry-After": "3"}) == 3.0
    assert retry_after_of({"Content-Type": "text/plain"}) is None
    assert retry_after_of(None) is None
