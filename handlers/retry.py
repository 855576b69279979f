"""The retry policy, stated once.

An event's attempts are counted across everything that can end an attempt: a handler error that
is retried, and a broker redelivery after a worker died mid-flight. Attempt n (1-based) that fails
with a retryable error is tried again after a delay drawn uniformly from
[0, min(max_delay, base_delay * 2 ** (n - 1))] ("full jitter": spreads a thundering herd), or
after exactly the downstream's Retry-After when it gave one. When attempt `max_attempts` fails,
or a permanent error happens at any attempt, the event is dead-lettered. Rate limits and open
circuit breakers postpone an event without spending an attempt.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError("need 0 <= base_delay <= max_delay")

    def backoff(self, attempt: int, uniform: Callable[[float, float], float] = random.uniform) -> float:
        """The delay before the attempt after `attempt` (1-based), with full jitter."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(0, attempt - 1))
        return uniform(0.0, ceiling)

    def exhausted(self, attempt: int) -> bool:
        return attempt >= self.max_attempts
