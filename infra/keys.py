"""Every Redis key the fleet writes, in one place. `{p}` is `FLEET_KEY_PREFIX`.

| key | type | what | lifetime |
| --- | --- | --- | --- |
| `{p}:msg:{message_id}` | hash | field `_deliveries`: times the message started; field `_fallback`: its batch fell back to one event at a time; a field per event key: runs of that event in this message | deleted when the message ends; a day's TTL covers a crash |
| `{p}:delayed` | sorted set | retries due later than `eta_max`, scored by due time | until due |
| `{p}:bucket:{downstream}` | hash | token bucket of a rate-limited downstream | a minute after last use |
| `{p}:breaker:{handler}` | hash | circuit breaker counts and state | window + cooldown |
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
