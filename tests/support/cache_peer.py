"""A process using the cache library with a first tier, driven line by line on stdin.

    python -m tests.support.cache_peer REDIS_URL NAMESPACE
    > get KEY TAG        < {"value": ..., "local": true|false}

The loader reads the "database" from the Redis key `{namespace}:db:{KEY}`, so a test can change
the source of truth and see which tier answers.
"""

from __future__ import annotations

import json
import sys

import redis

from fleet.cache import LocalTier, TaggedCache


def main(redis_url: str, namespace: str) -> None:
    client = redis.Redis.from_url(redis_url)
    cache = TaggedCache(client, namespace=namespace, local=LocalTier(ttl=300.0)).start()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command, key, tag = line.split()
        assert command == "get"
        local = cache.local is not None and cache.local.get(key) is not None

        def load(key: str = key) -> object:
            raw = client.get(f"{namespace}:db:{key}")
            return raw.decode() if isinstance(raw, bytes) else raw

        value = cache.get_or_set(key, load, ttl=300.0, tags=[tag])
        print(json.dumps({"value": value, "local": local}), flush=True)
    cache.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
