from __future__ import annotations

import pytest

from handlers.retry import RetryPolicy


def ceiling(low: float, high: float) -> float:
    return high


def test_backoff_ceiling_doubles_per_attempt_and_stops_at_max_delay() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=3.0)
    assert [policy.backoff(n, ceiling) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_backoff_is_full_jitter_between_zero_and_the_ceiling() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=100.0)
    delays = [policy.backoff(4) for _ in range(2000)]
    assert min(delays) >= 0 and max(delays) <= 8.0
    assert min(delays) < 1.0 and max(delays) > 7.0, "spread over the whole range"


def test_the_last_attempt_is_exhausted() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert [policy.exhausted(n) for n in (1, 2, 3, 4)] == [False, False, True, True]


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": 0}, {"base_delay": -1}, {"base_delay": 5, "max_delay": 1}]
)
def test_nonsense_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must|need"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
