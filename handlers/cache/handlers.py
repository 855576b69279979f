"""The `cache.invalidate` handler.

Natural idempotency, no ledger: an invalidation deletes entries and bumps generation counters.
Deleting what is already gone changes nothing, and a bumped generation only makes fills that were
in flight give up (they load again); so running the same event twice, or two events in any order,
leaves the cache as one run would. A ledger row would cost a database round trip per event for
nothing, and would be wrong besides: an invalidation replayed after a later fill must run again.
"""

from __future__ import annotations

from handlers.cache.data import MAX_NAMES
from handlers.cache.ports import CacheInvalidator
from handlers.envelope import Event
from handlers.errors import InvalidEvent

_FIELDS = ("keys", "tags", "patterns")


def _names(event: Event, field: str) -> list[str]:
    value = event.data.get(field, [])
    if not isinstance(value, list) or not all(isinstance(name, str) and name for name in value):
        raise InvalidEvent(f"data.{field}", "must be a list of non-empty strings")
    return value


def invalidate_cache(event: Event, *, cache: CacheInvalidator) -> None:
    """Drop the keys, tags and key patterns the event names: `{"keys": [...], "tags": [...],
    "patterns": [...]}`, at least one of them. Natural (see the module docstring)."""
    if not isinstance(event.data, dict):
        raise InvalidEvent("data", "must be an object with 'keys', 'tags' or 'patterns'")
    unknown = sorted(set(event.data) - set(_FIELDS))
    if unknown:
        raise InvalidEvent(f"data.{unknown[0]}", "unknown field; expected 'keys', 'tags' or 'patterns'")
    keys, tags, patterns = (_names(event, field) for field in _FIELDS)
    if not (keys or tags or patterns):
        raise InvalidEvent("data", "names no keys, tags or patterns")
    if len(keys) + len(tags) + len(patterns) > MAX_NAMES:
        raise InvalidEvent("data", f"names more than {MAX_NAMES} keys, tags and patterns")
    cache.invalidate(keys=keys, tags=tags, patterns=patterns)
