"""What the fleet gives every domain to build its ports with (`handlers.domains.Domain.ports`)."""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from sqlalchemy import Engine

from handlers.ports import Clock
from infra.settings import Settings


@dataclass(frozen=True)
class DomainContext:
    settings: Settings
    engine: Engine
    """The fleet's database: a domain's stores read through it; its transaction ports are handed
    the handler's connection instead."""
    redis: Redis
    """The fleet's coordination Redis; keys go under `settings.key_prefix`."""
    clock: Clock
