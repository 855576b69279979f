"""The trace id an event carries in its W3C `traceparent` extension, read strictly.

`00-<trace id: 32 hex>-<parent id: 16 hex>-<flags: 2 hex>`, lowercase (W3C Trace Context,
section 3.2). A header that breaks the format, the forbidden version `ff`, or an all-zero trace
or parent id names no trace: `trace_id` returns None rather than a link to nowhere.
"""

from __future__ import annotations

import re

_VERSION_00 = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
# A later version keeps these four fields first and may append more after a `-`.
_LATER_VERSION = re.compile(r"(?!ff)[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?", re.DOTALL)


def trace_id(traceparent: str | None) -> str | None:
    """The trace id of a valid `traceparent`, else None."""
    if not traceparent:
        return None
    match = _VERSION_00.fullmatch(traceparent)
    if match is None and not traceparent.startswith("00"):
        match = _LATER_VERSION.fullmatch(traceparent)
    if match is None:
        return None
    trace, parent = match.group(1), match.group(2)
    if trace == "0" * 32 or parent == "0" * 16:
        return None
    return trace
