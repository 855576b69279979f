"""The tagged cache's figures: reads per second by tier, and a pattern removal over many keys.

    .venv/bin/python -m bench.cache [--redis redis://127.0.0.1:6379/0] [--keys 100000]

The removal's longest SCAN or UNLINK round is timed on the client (round trip included); the
server's own time per call comes from `INFO commandstats` before and after (averages, and the
server's counts include any other client's SCAN and UNLINK meanwhile).
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

import redis

from fleet.cache import LocalTier, TaggedCache


def _rate(work: Any, seconds: float = 2.0) -> float:
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        for _ in range(100):
            work()
        done += 100
    return done / (time.perf_counter() - began)


def _command_stats(client: redis.Redis) -> dict[str, tuple[int, int]]:
    stats: dict[str, Any] = client.info("commandstats")
    return {
        name: (
            int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)),
            int(stats.get(f"cmdstat_{name}", {}).get("usec", 0)),
        )
        for name in ("scan", "unlink")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--keys", type=int, default=100_000)
    args = parser.parse_args()
    client = redis.Redis.from_url(args.redis)
    namespace = f"bench{uuid.uuid4().hex[:6]}"
    shared = TaggedCache(client, namespace=namespace)
    tiered = TaggedCache(
        redis.Redis.from_url(args.redis), namespace=namespace, local=LocalTier(ttl=60)
    ).start()
    try:
        shared.get_or_set("hot", lambda: {"a": 1}, ttl=60, tags=["t"])
        tiered.get_or_set("hot", lambda: {"a": 1}, ttl=60, tags=["t"])
        print(
            f"get_or_set, Redis hit:       {_rate(lambda: shared.get_or_set('hot', dict, ttl=60)):>10,.0f} /s"
        )
        print(
            f"get_or_set, first-tier hit:  {_rate(lambda: tiered.get_or_set('hot', dict, ttl=60)):>10,.0f} /s"
        )

        pipe = client.pipeline(transaction=False)
        for n in range(args.keys):
            pipe.set(f"{namespace}:k:session:{n}", b"1", ex=600)
            if n % 10_000 == 9_999:
                pipe.execute()
        pipe.execute()
        before = _command_stats(client)
        began = time.perf_counter()
        removal = shared.remove_pattern("session:*")
        elapsed = time.perf_counter() - began
        after = _command_stats(client)
        print(
            f"pattern removal: {removal.removed:,} keys, {removal.rounds} rounds, {elapsed:.2f} s, "
            f"longest round {removal.longest_round * 1000:.2f} ms (client side)"
        )
        for name in ("scan", "unlink"):
            calls, usec = (a - b for a, b in zip(after[name], before[name], strict=True))
            print(f"  server {name}: {calls} calls, {usec / max(calls, 1) / 1000:.2f} ms per call on average")
    finally:
        tiered.close()
        for key in client.scan_iter(f"{namespace}:*", count=1000):
            client.unlink(key)


if __name__ == "__main__":
    main()
