"""An event's trace id is read from its `traceparent` strictly: a malformed one names no trace."""

from __future__ import annotations

import pytest

from handlers.trace_context import trace_id

TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.mark.parametrize(
    "traceparent",
    [
        f"00-{TRACE}-b7ad6b7169203331-01",
        f"00-{TRACE}-b7ad6b7169203331-00",
        f"01-{TRACE}-b7ad6b7169203331-01-later",
    ],
)
def test_a_valid_traceparent_gives_its_trace_id(traceparent: str) -> None:
    assert trace_id(traceparent) == TRACE


@pytest.mark.parametrize(
    "traceparent",
    [
        None,
        "",
        "nope",
        f"00-{TRACE}-b7ad6b7169203331-01\n",
        f"00-{TRACE}-b7ad6b7169203331-01-extra",  # version 00 has exactly four fields
        f"ff-{TRACE}-b7ad6b7169203331-01",  # version ff is forbidden
        f"00-{TRACE.upper()}-b7ad6b7169203331-01",  # lowercase only
        f"00-{'0' * 32}-b7ad6b7169203331-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE[:-1]}-b7ad6b7169203331-01",
        f"0-{TRACE}-b7ad6b7169203331-01",
    ],
)
def test_a_malformed_traceparent_names_no_trace(traceparent: str | None) -> None:
    assert trace_id(traceparent) is None
