"""Downstream slots: a per-worker cap on the pool processes busy with one downstream at once.

A worker's pool processes share one Redis sorted set per downstream (`keys.slots`), whose members
are the pids holding a slot, scored by when their hold lapses. A process takes a slot before it
runs a message of a route naming that downstream and gives it back after; when every slot is
taken, the message's events are postponed without spending an attempt (engine/dispatch.py), so
a slow or unreachable downstream holds at most its slots and the rest of the pool keeps the
other queues flowing. A pool process killed while holding a slot is noticed by pid (all of a
worker's processes are on one machine) the next time the slots are full; its hold lapses anyway.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import redis

from infra import keys

log = logging.getLogger("fleet.slots")

_TAKE_SLOT = """
local limit, lease, holder = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], holder) and redis.call('ZCARD', KEYS[1]) >= limit then
  return 0
end
redis.call('ZADD', KEYS[1], now + lease, holder)
redis.call('EXPIRE', KEYS[1], math.ceil(lease) + 60)
return 1
"""


def default_slots(pool_size: int) -> int:
    """A downstream not named in FLEET_DOWNSTREAM_SLOTS: all of the pool but one (at least one)."""
    return max(1, pool_size - 1)


class RedisSlots:
    """The slots of one worker (`scope`: its host and main pid, shared by its pool processes)."""

    def __init__(
        self, client: redis.Redis, prefix: str, scope: str, limits: Mapping[str, int], pool_size: int
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._scope = scope
        self._limits = dict(limits)
        self._default = default_slots(pool_size)
        self._take = client.register_script(_TAKE_SLOT)
        self._held: set[str] = set()

    def limit(self, downstream: str) -> int:
        return self._limits.get(downstream, self._default)

    def take(self, downstream: str, lease: float) -> bool:
        """Whether this process got a slot of `downstream` (held at most `lease` seconds)."""
        key = keys.slots(self._prefix, self._scope, downstream)
        args: list[int | float | str] = [self.limit(downstream), lease, str(os.getpid())]

        def attempt() -> bool:
            return bool(self._take(keys=[key], args=args))

        if not (attempt() or (self._free_dead(key) and attempt())):
            return False
        self._held.add(downstream)
        return True

    def give_back(self) -> None:
        """Give back every slot this process holds (none: nothing to do, no round trip)."""
        for downstream in list(self._held):
            self._redis.zrem(keys.slots(self._prefix, self._scope, downstream), str(os.getpid()))
            self._held.discard(downstream)

    def _free_dead(self, key: str) -> bool:
        """Drop holders whose process is gone (killed mid-call); whether any was."""
        holders = [m.decode() if isinstance(m, bytes) else str(m) for m in self._redis.zrange(key, 0, -1)]
        dead = [pid for pid in holders if not _alive(int(pid))]
        if dead:
            log.warning("slots of %s held by pool processes that are gone (%s): freed", key, ", ".join(dead))
            self._redis.zrem(key, *dead)
        return bool(dead)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process under a reused pid: not ours to judge
        return True
    return True
