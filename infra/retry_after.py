"""`Retry-After` as every HTTP adapter reads it (RFC 9110, section 10.2.3).

The field is either delay-seconds (`120`) or an HTTP-date (`Wed, 21 Oct 2026 07:28:00 GMT`).
A date already past means "now"; anything else (negative, `inf`, `soon`) is no answer at all, so
the caller falls back to its own default wait. A wait longer than `MAX_RETRY_AFTER` is cut to it:
an event parked for days on one header is a stuck event, not a polite client.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER = 3600.0
"""Longest wait honoured, in seconds."""

_DELAY_SECONDS = re.compile(r"\d+(\.\d+)?")  # 1*DIGIT; a fraction is tolerated, a sign is not


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait, between 0 and `MAX_RETRY_AFTER`; None when absent or not a valid value."""
    if value is None:
        return None
    text = value.strip()
    if _DELAY_SECONDS.fullmatch(text):
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": the RFC 5322 spelling of "zone unknown"; HTTP-dates are GMT
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


def retry_after_of(headers: Mapping[str, str] | None) -> float | None:
    """`parse_retry_after` of the `Retry-After` field of `headers` (its name in any case)."""
    if not headers:
        return None
    return parse_retry_after(next((v for k, v in headers.items() if k.lower() == "retry-after"), None))
