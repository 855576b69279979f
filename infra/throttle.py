"""Protecting downstreams: a fleet-wide token bucket per downstream, a circuit breaker per handler.

Both live in Redis and run as Lua scripts on Redis's own clock, so every worker on every machine
shares one bucket and one breaker state, and no two workers race on them.

- Rate limit: a route naming `downstream="graph"` takes one token per event from the bucket
  `graph`, refilled at `FLEET_RATE_LIMITS` `graph=<per second>` with a burst of one second's
  worth. Events without a token are postponed until one is due; they spend no attempt.
- Circuit breaker: a route with a `BreakerPolicy` opens when, within a window, at least
  `min_calls` ran and `failure_ratio` of them failed. While open, its events are postponed (no
  attempt spent, no worker slot held) until the cooldown ends; then one probe event is let
  through (half-open): success closes the breaker, failure opens it for another cooldown.
  Permanent errors (bad input) are not the downstream's fault and are not counted; throttling
  (`RateLimited`, a 429 with Retry-After) is a downstream that answers, and counts as a success.
- Slots (infra/slots.py): before any of that, a message of a route naming a downstream takes one
  of this worker's slots of it, given back when the message is done; none free, its events are
  postponed by `SLOT_WAIT` without spending an attempt.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping

import redis

from handlers.registry import Route
from infra import keys
from infra.slots import RedisSlots

log = logging.getLogger("fleet.throttle")
SLOT_WAIT = 1.0
"""Seconds until a message that found no free slot looks again: a slot frees when a call ends,
which is at most FLEET_GRAPH_TIMEOUT (or the downstream's own timeout) away."""

_TAKE_TOKENS = """
local rate, capacity, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local granted = math.min(want, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], 60 + math.ceil(capacity / rate))
local wait = 0
if granted < want then wait = (1 - tokens) / rate end
return {granted, tostring(wait)}
"""

# Breaker fields: window (id of the current window), ok, fail, open_until, probe_until.
_BREAKER_ADMIT = """
local probe_timeout = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if open_until == 0 then return {1, '0'} end
if now < open_until then return {0, tostring(open_until - now)} end
local probe_until = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if now < probe_until then return {0, tostring(math.min(1.0, probe_until - now))} end
redis.call('HSET', KEYS[1], 'probe_until', tostring(now + probe_timeout))
return {1, 'probe'}
"""

_BREAKER_RECORD = """
local ok, fail = tonumber(ARGV[1]), tonumber(ARGV[2])
local window, ratio = tonumber(ARGV[3]), tonumber(ARGV[4])
local min_calls, cooldown = tonumber(ARGV[5]), tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if open_until > 0 and now >= open_until then
  -- half-open: the probe's outcome decides
  if fail > 0 then
    redis.call('HSET', KEYS[1], 'open_until', tostring(now + cooldown), 'probe_until', '0')
    return 'reopened'
  end
  redis.call('DEL', KEYS[1])
  return 'reclosed'
end
if open_until > 0 then return 'open' end
local current = math.floor(now / window)
if tonumber(redis.call('HGET', KEYS[1], 'window') or '-1') ~= current then
  redis.call('HSET', KEYS[1], 'window', current, 'ok', 0, 'fail', 0)
end
local oks = redis.call('HINCRBY', KEYS[1], 'ok', ok)
local fails = redis.call('HINCRBY', KEYS[1], 'fail', fail)
redis.call('EXPIRE', KEYS[1], math.ceil(window + cooldown) * 2)
if oks + fails >= min_calls and fails / (oks + fails) >= ratio then
  redis.call('HSET', KEYS[1], 'open_until', tostring(now + cooldown), 'probe_until', '0')
  return 'opened'
end
return 'closed'
"""


class RedisGate:
    """The dispatcher's `Gate`: how many of n events may run now, and when the rest may."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        rate_limits: Mapping[str, float],
        slots: RedisSlots | None = None,
    ) -> None:
        self._redis = client
        self._slots = slots
        self._prefix = prefix
        self._rates = dict(rate_limits)
        self._take = client.register_script(_TAKE_TOKENS)
        self._admit = client.register_script(_BREAKER_ADMIT)
        self._record = client.register_script(_BREAKER_RECORD)

    def admit(self, route: Route, wanted: int) -> tuple[int, float]:
        slots, downstream = self._slots, route.downstream
        if slots is not None and downstream and not slots.take(downstream, route.lease):
            return 0, SLOT_WAIT * (0.5 + random.random())
        granted, wait = self._admit_now(route, wanted)
        if not granted:
            self.release(route)
        return granted, wait

    def release(self, route: Route) -> None:
        if self._slots is not None:
            self._slots.give_back()

    def _admit_now(self, route: Route, wanted: int) -> tuple[int, float]:
        granted, wait = wanted, 0.0
        if route.breaker is not None:
            allowed, detail = self._admit(
                keys=[keys.breaker(self._prefix, route.name)], args=[route.breaker.cooldown]
            )
            if not allowed:
                return 0, float(detail)
            if detail == b"probe":
                granted = 1  # half-open: one event tries the downstream
        rate = self._rates.get(route.downstream or "")
        if rate:
            capacity = max(1.0, rate)
            taken, rest = self._take(
                keys=[keys.bucket(self._prefix, route.downstream or "")], args=[rate, capacity, granted]
            )
            granted, wait = int(taken), float(rest)
        elif granted < wanted:
            wait = 1.0
        return granted, wait

    def record(self, route: Route, ok: int = 0, failed: int = 0) -> None:
        policy = route.breaker
        if policy is None or not (ok or failed):
            return
        state = self._record(
            keys=[keys.breaker(self._prefix, route.name)],
            args=[ok, failed, policy.window, policy.failure_ratio, policy.min_calls, policy.cooldown],
        )
        if state in (b"opened", b"reopened"):
            log.warning(
                "circuit %s for %s: postponing its events for %ss",
                state.decode(),
                route.name,
                policy.cooldown,
            )
        elif state == b"reclosed":
            log.warning("circuit closed again for %s: the probe succeeded", route.name)
