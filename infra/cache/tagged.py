"""A tagged read-through cache on Redis for the applications around the fleet, with stampede
protection, an optional in-process first tier, and generations that keep stale reads out.

    cache = TaggedCache(redis.Redis(...), namespace="fleet:cache", local=LocalTier(ttl=5))
    cache.start()  # with a first tier: subscribe to the invalidation broadcast
    orders = cache.get_or_set(f"orders:{cid}", load_orders, ttl=300, tags=[f"customer:{cid}:orders"])
    cache.invalidate(tags=["user:42"])  # or publish a `cache.invalidate` event to the fleet

Redis keys: infra/keys.py (`cache_*`, under the namespace; the fleet's handler uses
`{FLEET_KEY_PREFIX}:cache`). Values are JSON, with the caller's TTL.

The read/invalidate race: a reader that misses notes the generations of its key, its tags and
the pattern generation, loads, and stores only if none changed (one Lua script). An invalidation
bumps the generations before it deletes, so a load that began before a write committed, and ends
after its invalidation, is returned to its caller but never stored.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from infra import keys as redis_keys
from infra.cache.local_tier import InvalidationListener, LocalTier

__all__ = ["LocalTier", "PatternRemoval", "TaggedCache"]

_NAMESPACE = re.compile(r"^[A-Za-z0-9_.:-]+$")  # no glob characters: patterns are scanned under it

# KEYS: value key, n generation keys, tag sets. ARGV: value, ttl ms, n, n expected generations, key.
_FILL = """
local n = tonumber(ARGV[3])
for i = 1, n do
  if (redis.call('GET', KEYS[1 + i]) or '') ~= ARGV[3 + i] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local ttl = tonumber(ARGV[2])
for i = n + 2, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[4 + n])
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class PatternRemoval:
    """What one pattern removal did: keys removed, SCAN/UNLINK rounds, the slowest round (seconds)."""

    removed: int
    rounds: int
    longest_round: float


class TaggedCache:
    """The shared tier in Redis, and the first tier in this process when `local` is given."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str,
        local: LocalTier | None = None,
        lock_ttl: float = 10.0,
        generation_ttl: float = 86_400.0,
        scan_count: int = 1000,
    ) -> None:
        if not _NAMESPACE.match(namespace):
            raise ValueError(f"cache namespace {namespace!r}: use letters, digits and _ . : - only")
        self._redis = client
        self.namespace = namespace
        self.local = local
        self.lock_ttl = lock_ttl
        """Longest a loader holds its key's lock; waiters then load themselves."""
        self.generation_ttl = generation_ttl
        """Must outlast the slowest load: a generation that expires mid-load reads as unchanged."""
        self.scan_count = scan_count
        self.channel = redis_keys.cache_channel(namespace)
        self._fill = client.register_script(_FILL)
        self._release = client.register_script(_RELEASE)
        self._listener: InvalidationListener | None = None

    # -- reading ---------------------------------------------------------------------------

    def get_or_set(self, key: str, loader: Callable[[], Any], *, ttl: float, tags: Sequence[str] = ()) -> Any:
        """The cached value of `key`, or `loader()`'s (a JSON value) stored for `ttl` seconds under
        `tags`. One loader per key at a time across all processes; the others wait for its value."""
        epoch = self.local.epoch if self.local is not None else 0
        if self.local is not None and (raw := self.local.get(key)) is not None:
            return json.loads(raw)
        raw = self._get(key)
        fresh = raw is not None
        if raw is None:
            raw, fresh = self._load(key, loader, ttl, tags)
        if self.local is not None and fresh:
            self.local.put(key, raw, tags, epoch)
        return json.loads(raw)

    def _load(
        self, key: str, loader: Callable[[], Any], ttl: float, tags: Sequence[str]
    ) -> tuple[bytes, bool]:
        """Load under the key's lock, or wait for the lock holder's value; (value, stored)."""
        lock, token = redis_keys.cache_lock(self.namespace, key), uuid.uuid4().hex
        deadline, pause = time.monotonic() + self.lock_ttl, 0.005
        while True:
            if self._redis.set(lock, token, nx=True, px=int(self.lock_ttl * 1000)):
                try:
                    raw = self._get(key)  # filled while we waited
                    if raw is not None:
                        return raw, True
                    return self._load_and_fill(key, loader, ttl, tags)
                finally:
                    self._release(keys=[lock], args=[token])
            if time.monotonic() >= deadline:  # its holder is stuck or dead: load without the lock
                return self._load_and_fill(key, loader, ttl, tags)
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
            if (raw := self._get(key)) is not None:
                return raw, True

    def _load_and_fill(
        self, key: str, loader: Callable[[], Any], ttl: float, tags: Sequence[str]
    ) -> tuple[bytes, bool]:
        generation_keys = self._generation_keys(key, tags)
        seen = [_text(value) for value in self._redis.mget(generation_keys)]
        raw = json.dumps(loader(), separators=(",", ":")).encode()
        tag_sets = [self._tag_key(tag) for tag in tags]
        stored = self._fill(
            keys=[self._value_key(key), *generation_keys, *tag_sets],
            args=[raw, max(1, int(ttl * 1000)), len(generation_keys), *seen, key],
        )
        return raw, bool(stored)

    # -- invalidating ----------------------------------------------------------------------

    def invalidate(
        self, *, keys: Sequence[str] = (), tags: Sequence[str] = (), patterns: Sequence[str] = ()
    ) -> int:
        """Remove keys, every key of the tags, every key matching the glob patterns, from Redis;
        then tell every first tier to drop them. Returns how many values Redis removed."""
        removed = self._remove_keys(keys)
        removed += sum(self._remove_tag(tag) for tag in tags)
        removed += sum(self.remove_pattern(pattern).removed for pattern in patterns)
        message = {"keys": list(keys), "tags": list(tags), "patterns": list(patterns)}
        self._redis.publish(self.channel, json.dumps(message))
        if self.local is not None:  # this process's own tier, even before its listener hears the broadcast
            self.local.drop(keys=keys, tags=tags, patterns=patterns)
        return removed

    def _remove_keys(self, keys: Sequence[str], chunk: int = 500) -> int:
        removed = 0
        ttl = int(self.generation_ttl * 1000)
        for start in range(0, len(keys), chunk):
            pipe = self._redis.pipeline(transaction=True)
            for key in keys[start : start + chunk]:
                pipe.incr(redis_keys.cache_key_generation(self.namespace, key))
                pipe.pexpire(redis_keys.cache_key_generation(self.namespace, key), ttl)
                pipe.unlink(self._value_key(key))
            removed += sum(pipe.execute()[2::3])
        return removed

    def _remove_tag(self, tag: str, chunk: int = 500) -> int:
        generation = redis_keys.cache_tag_generation(self.namespace, tag)
        pipe = self._redis.pipeline(transaction=True)
        pipe.incr(generation)
        pipe.pexpire(generation, int(self.generation_ttl * 1000))
        pipe.execute()
        removed = 0
        # SPOP in chunks, never SMEMBERS: a tag on a million keys must not block Redis in one command.
        while members := self._redis.spop(self._tag_key(tag), chunk):
            removed += int(self._redis.unlink(*(self._value_key(_text(m)) for m in members)))
        return removed

    def remove_pattern(self, pattern: str) -> PatternRemoval:
        """Remove every key matching the glob `pattern` by SCAN and UNLINK rounds (never KEYS: it
        blocks Redis for the whole keyspace); UNLINK frees the memory off the main thread."""
        self._redis.incr(redis_keys.cache_pattern_generation(self.namespace))
        removed = rounds = 0
        longest = 0.0
        cursor = 0
        while True:
            began = time.perf_counter()
            cursor, found = self._redis.scan(cursor, match=self._value_key(pattern), count=self.scan_count)
            longest = max(longest, time.perf_counter() - began)
            rounds += 1
            if found:
                began = time.perf_counter()
                removed += int(self._redis.unlink(*found))
                longest = max(longest, time.perf_counter() - began)
            if cursor == 0:
                return PatternRemoval(removed, rounds, longest)

    # -- first tier ------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> TaggedCache:
        """With a first tier: subscribe to the broadcast; copies are served from then on."""
        if self.local is not None and self._listener is None:
            self._listener = InvalidationListener(self._redis, self.channel, self.local)
            self._listener.start(timeout)
        return self

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None

    def _get(self, key: str) -> bytes | None:
        raw = self._redis.get(self._value_key(key))
        return raw.encode() if isinstance(raw, str) else raw  # a client made with decode_responses

    def _value_key(self, key: str) -> str:
        return redis_keys.cache_value(self.namespace, key)

    def _tag_key(self, tag: str) -> str:
        return redis_keys.cache_tag(self.namespace, tag)

    def _generation_keys(self, key: str, tags: Sequence[str]) -> list[str]:
        return [
            redis_keys.cache_key_generation(self.namespace, key),
            *(redis_keys.cache_tag_generation(self.namespace, tag) for tag in tags),
            redis_keys.cache_pattern_generation(self.namespace),
        ]


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return "" if value is None else str(value)
