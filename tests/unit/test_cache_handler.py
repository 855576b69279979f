"""The `cache.invalidate` handler with a fake cache: what it passes on, what it refuses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from handlers.cache.handlers import invalidate_cache
from handlers.envelope import Event, new_event
from handlers.errors import InvalidEvent


class Invalidator:
    def __init__(self) -> None:
        self.calls: list[dict[str, list[str]]] = []

    def invalidate(
        self, *, keys: Sequence[str] = (), tags: Sequence[str] = (), patterns: Sequence[str] = ()
    ) -> int:
        self.calls.append({"keys": list(keys), "tags": list(tags), "patterns": list(patterns)})
        return 0


def invalidation(data: Any) -> Event:
    return new_event("cache.invalidate", data, source="tests", id="i-1")


def test_the_cache_handler_passes_keys_tags_and_patterns_on() -> None:
    cache = Invalidator()
    invalidate_cache(invalidation({"tags": ["user:42"], "patterns": ["user:42:*"]}), cache=cache)
    assert cache.calls == [{"keys": [], "tags": ["user:42"], "patterns": ["user:42:*"]}]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], "data"),
        ({}, "data"),
        ({"tags": "user:42"}, "data.tags"),
        ({"keys": [""]}, "data.keys"),
        ({"tag": ["user:42"]}, "data.tag"),
    ],
)
def test_the_cache_handler_refuses_what_names_nothing_usable(data: Any, field: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        invalidate_cache(invalidation(data), cache=Invalidator())
    assert caught.value.field == field
