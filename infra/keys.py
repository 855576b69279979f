"""Every Redis key the fleet writes, in one place. `{p}` is `FLEET_KEY_PREFIX`.

`{p}:msg:{message_id}` (hash): the attempt record of one broker message. Field `_deliveries`:
    times the message started; `_fallback`: its batch fell back to one event at a time; one
    field per event key: runs of that event in this message. Deleted in the pipeline that starts
    the process's next message; a day's TTL covers a crash and a process's last message.
`{p}:delayed` (sorted set): retries due later than `eta_max`, scored by due time.
`{p}:bucket:{downstream}` (hash): the token bucket of a rate-limited downstream.
`{p}:breaker:{handler}` (hash): a circuit breaker's counts and state.
`{p}:slots:{worker}:{downstream}` (sorted set): the pids of a worker's pool processes holding a
    slot of a downstream, scored by when the hold lapses (infra/slots.py); `{worker}` is its host
    and main pid.
`{p}:worker:{hostname}` (hash): a worker's heartbeat, expiring after 30 s (infra/heartbeats.py).
`{p}:graph:secrets` (channel): tells web processes that Graph subscriptions' clientState changed.
`{p}:demo:receipts` (list): the demo domain's sent receipts; `{p}:demo:down:{name}` (string):
    the demo downstream `name` is down while it exists.
`{p}:cache:…` (`{ns}` below): the shared cache `cache.invalidate` works on (infra/cache/):
    `{ns}:k:{key}` a value; `{ns}:t:{tag}` (set) the keys tagged `tag`; `{ns}:gk:{key}`,
    `{ns}:gt:{tag}`, `{ns}:gp` generations of a key, a tag and of all patterns; `{ns}:l:{key}`
    a loader's lock; channel `{ns}:invalidations` tells first tiers to drop.
`{p}:beat:leader` (string, TTL the lock timeout): the token of the beat that may fire jobs.
`{p}:schedule:{job}` (hash): `last_slot` (the slot last fired), `paused`, `last_success`,
    `last_started`, `last_outcome`, `last_error` (infra/schedules/state.py).
`{p}:schedule:{job}:running` (string, TTL the job's timeout): a run is going (overlap guard).
`{p}:schedule:{job}:history` (list): the job's last runs, newest first.
`{p}:schedule:runs` (hash): `{job}|{outcome}` -> runs, for `fleet_schedule_runs_total`.
`{p}:history:dropped` (counter): event history entries workers gave up writing, for
    `fleet_history_dropped_total` and the console's overview (infra/history.py).
`{p}:arrivals:{minute}` (hash, TTL an hour): events put on each queue in that minute (epoch
    minutes), for the console's "in / min" (infra/arrivals.py).
`{p}:schedules:changed` (counter): bumped on every change to the runtime schedules (which live in
    PostgreSQL), so beat reloads them at its next tick.
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


def slots(prefix: str, worker: str, downstream: str) -> str:
    return f"{prefix}:slots:{worker}:{downstream}"


def worker(prefix: str, hostname: str) -> str:
    return f"{prefix}:worker:{hostname}"


def graph_secrets_channel(prefix: str) -> str:
    return f"{prefix}:graph:secrets"


def demo_receipts(prefix: str) -> str:
    return f"{prefix}:demo:receipts"


def demo_down(prefix: str, name: str) -> str:
    return f"{prefix}:demo:down:{name}"


def cache_namespace(prefix: str) -> str:
    return f"{prefix}:cache"


def cache_value(namespace: str, key: str) -> str:
    return f"{namespace}:k:{key}"


def cache_tag(namespace: str, tag: str) -> str:
    return f"{namespace}:t:{tag}"


def cache_key_generation(namespace: str, key: str) -> str:
    return f"{namespace}:gk:{key}"


def cache_tag_generation(namespace: str, tag: str) -> str:
    return f"{namespace}:gt:{tag}"


def cache_pattern_generation(namespace: str) -> str:
    return f"{namespace}:gp"


def cache_lock(namespace: str, key: str) -> str:
    return f"{namespace}:l:{key}"


def cache_channel(namespace: str) -> str:
    return f"{namespace}:invalidations"


def beat_leader(prefix: str) -> str:
    return f"{prefix}:beat:leader"


def schedule(prefix: str, job: str) -> str:
    return f"{prefix}:schedule:{job}"


def schedule_running(prefix: str, job: str) -> str:
    return f"{prefix}:schedule:{job}:running"


def schedule_history(prefix: str, job: str) -> str:
    return f"{prefix}:schedule:{job}:history"


def schedule_runs(prefix: str) -> str:
    return f"{prefix}:schedule:runs"


def schedules_changed(prefix: str) -> str:
    return f"{prefix}:schedules:changed"


def history_dropped(prefix: str) -> str:
    return f"{prefix}:history:dropped"


def arrivals(prefix: str, minute: int) -> str:
    return f"{prefix}:arrivals:{minute}"
