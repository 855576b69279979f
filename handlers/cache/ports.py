"""Ports of the cache domain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class CacheInvalidator(Protocol):
    """The shared cache (infra/cache/): drops entries and tells every first tier to drop them."""

    def invalidate(
        self, *, keys: Sequence[str] = (), tags: Sequence[str] = (), patterns: Sequence[str] = ()
    ) -> int:
        """Remove the named keys, every key tagged with one of `tags`, and every key matching one of
        the glob `patterns`; returns how many entries were removed from the shared tier."""
        ...
