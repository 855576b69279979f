"""An event's W3C `traceparent` extension, read strictly: the one reader of it in the fleet (the
console's trace links, the history's trace ids, the spans' creation contexts).

`00-<trace id: 32 hex>-<parent id: 16 hex>-<flags: 2 hex>`, lowercase (W3C Trace Context,
section 3.2). A header that breaks the format, the forbidden version `ff`, or an all-zero trace
or parent id names no trace: `parse` returns None rather than a context that leads nowhere.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_VERSION_00 = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
# A later version keeps these four fields first and may append more after a `-`.
_LATER_VERSION = re.compile(r"(?!ff)[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.DOTALL)
_SAMPLED = 0x01


class TraceParent(NamedTuple):
    trace_id: int
    parent_id: int
    sampled: bool


def parse(traceparent: str | None) -> TraceParent | None:
    """The fields of a valid `traceparent`, else None."""
    if not traceparent:
        return None
    match = _VERSION_00.fullmatch(traceparent)
    if match is None and not traceparent.startswith("00"):
        match = _LATER_VERSION.fullmatch(traceparent)
    if match is None:
        return None
    trace, parent = int(match.group(1), 16), int(match.group(2), 16)
    if not trace or not parent:
        return None
    return TraceParent(trace, parent, bool(int(match.group(3), 16) & _SAMPLED))


def trace_id(traceparent: str | None) -> str | None:
    """The trace id of a valid `traceparent`, else None."""
    parsed = parse(traceparent)
    return None if parsed is None else f"{parsed.trace_id:032x}"
