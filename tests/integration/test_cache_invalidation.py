"""`cache.invalidate` on a real worker: Redis loses the keys and first tiers in two other
processes drop their copies; bad input is dead-lettered with its reason."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.envelope import new_event
from tests.integration.conftest import FleetUnderTest
from tests.support.processes import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """One broker is enough here: the handler calls no broker-specific code (saves suite time)."""
    return redis_url


class Peer:
    """A process with its own first tier (tests/support/cache_peer.py)."""

    def __init__(self, redis_url: str, namespace: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.cache_peer", redis_url, namespace],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._read() == {"ready": True}

    def get(self, key: str, tag: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(f"get {key} {tag}\n")
        self.process.stdin.flush()
        return self._read()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        return json.loads(self.process.stdout.readline())  # type: ignore[no-any-return]

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=20)
        if self.process.stdout:
            self.process.stdout.close()


@pytest.fixture
def peers(fleet_under_test: FleetUnderTest) -> Iterator[list[Peer]]:
    fut = fleet_under_test
    started = [Peer(fut.env["FLEET_REDIS_URL"], fut.fleet.domains.port("cache").namespace) for _ in range(2)]
    yield started
    for peer in started:
        peer.close()


def test_an_invalidation_event_empties_redis_and_both_first_tiers(
    fleet_under_test: FleetUnderTest, peers: list[Peer]
) -> None:
    fut = fleet_under_test
    namespace = fut.fleet.domains.port("cache").namespace
    fut.redis.set(f"{namespace}:db:profile:42", "v1")
    fut.redis.set(f"{namespace}:db:profile:43", "other")
    for peer in peers:
        assert peer.get("profile:42", "user:42")["value"] == "v1"
        assert peer.get("profile:42", "user:42") == {"value": "v1", "local": True}
        assert peer.get("profile:43", "user:43")["value"] == "other"
    fut.redis.set(f"{namespace}:db:profile:42", "v2")  # the source changes; the caches do not know yet
    assert all(peer.get("profile:42", "user:42") == {"value": "v1", "local": True} for peer in peers)

    fut.start_worker()
    event = new_event("cache.invalidate", {"tags": ["user:42"]}, source="tests", id="user-42-changed")
    fut.fleet.publisher.publish([event])
    fut.fleet.publisher.publish([event])  # delivered twice: natural idempotency, same end state

    def dropped_everywhere() -> bool:
        return all(peer.get("profile:42", "user:42")["value"] == "v2" for peer in peers)

    wait_until(dropped_everywhere, timeout=60, what="both first tiers to drop user:42")
    # v2 as a peer stored it again, or nothing if the second delivery ran after that: never v1.
    assert fut.redis.get(f"{namespace}:k:profile:42") in (b'"v2"', None)
    assert all(peer.get("profile:43", "user:43") == {"value": "other", "local": True} for peer in peers)
    assert fut.letters() == []


def test_an_invalidation_naming_nothing_usable_is_dead_lettered_with_its_reason(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    fut.start_worker()
    bad = new_event("cache.invalidate", {"tags": "user:42"}, source="tests", id="bad-invalidation")
    fut.fleet.publisher.publish([bad])
    wait_until(lambda: len(fut.letters()) == 1, timeout=60, what="the dead letter")
    letter = fut.letters()[0]
    assert (letter.event_id, letter.error_type) == ("bad-invalidation", "InvalidEvent")
    assert "data.tags: must be a list of non-empty strings" in letter.error_message
