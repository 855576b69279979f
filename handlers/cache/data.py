"""The cache domain's event data, checked at the door (handlers/contracts.py)."""

from __future__ import annotations

from typing import Annotated

import pydantic
from pydantic import ConfigDict, Field

from handlers.contracts import EventData

MAX_NAMES = 10_000
"""Most names one event may carry: a bigger invalidation is a bug upstream, not a cache job."""

Name = Annotated[str, Field(min_length=1)]


class CacheInvalidate(EventData, event_type="cache.invalidate"):
    """Keys, tags and key patterns to drop: at least one name in all."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": [names], "properties": {names: {"minItems": 1}}}
                for names in ("keys", "tags", "patterns")
            ]
        },
    )

    keys: list[Name] = Field(default_factory=list)
    tags: list[Name] = Field(default_factory=list)
    patterns: list[Name] = Field(default_factory=list)

    @pydantic.model_validator(mode="after")
    def _names_some(self) -> CacheInvalidate:
        names = len(self.keys) + len(self.tags) + len(self.patterns)
        if not names:
            raise ValueError("names no keys, tags or patterns")
        if names > MAX_NAMES:
            raise ValueError(f"names more than {MAX_NAMES} keys, tags and patterns")
        return self
