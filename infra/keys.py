"""Every Redis key the fleet writes, in one place. `{p}` is `FLEET_KEY_PREFIX`.

`{p}:msg:{message_id}` (hash): the attempt record of one broker message. Field `_deliveries`:
    times the message started; `_fallback`: its batch fell back to one event at a time; one
    field per event key: runs of that event in this message. Deleted in the pipeline that starts
    the process's next message; a day's TTL covers a crash and a process's last message.
`{p}:delayed` (sorted set): retries due later than `eta_max`, scored by due time.
`{p}:bucket:{downstream}` (hash): the token bucket of a rate-limited downstream.
`{p}:breaker:{handler}` (hash): a circuit breaker's counts and state.
`{p}:worker:{hostname}` (hash): a worker's heartbeat, expiring after 30 s (infra/heartbeats.py).
`{p}:cache:…`: the shared cache `cache.invalidate` works on: values, tag sets, generations,
    loader locks and the invalidation channel, listed in fleet/cache.py.
"""

from __future__ import annotations

MESSAGE_TTL = 24 * 3600


def message(prefix: str, message_id: str) -> str:
    return f"{prefix}:msg:{message_id}"


def delayed(prefix: str) -> str:
    return f"{prefix}:delayed"


def bucket(prefix: str, downstream: str) -> str:
    return f"{prefix}:bucket:{downstream}"


def breaker(prefix: str, handler: str) -> str:
    return f"{prefix}:breaker:{handler}"
