"""Leases on the messages a live worker holds on the Redis broker, renewed while it lives.

kombu records every message a worker takes from a Redis queue in the sorted set `unacked_index`
(member: the delivery tag, score: when it was taken) and the message itself in the hash
`unacked`. Every worker sweeps the set (`restore_visible`, every `sweep_interval` seconds) and
puts each message whose score is older than the visibility timeout back on its queue. Stock
kombu never moves a score, so the timeout has to outlast the longest task and countdown, and a
dead worker's messages wait that long (an hour by default).

Here the timeout is a lease: a thread in each worker's main process sets the score of every
message the worker holds (running, prefetched, or waiting for its countdown) to the current
time every `renew_interval` seconds. A live worker's messages are never older than that
interval, however long they are held; a dead worker's are put back a lease later. The figures
and what they cost: docs/delivery.md.

The API, for any consumer that takes messages kombu's way (into `unacked_index`):

    leases = RedisLeases(client, index_key)       # kombu's key (`index_key(channel)`)
    lost = leases.renew(tags)                     # "these delivery tags are held by this live
                                                  # worker"; returns the tags no longer leased
    LeaseKeeper(leases, held=lambda: tags, interval=...).start()   # renews in a thread

`kombu_held_tags(channel)` reads the tags a kombu Redis channel holds: delivered, not yet acked;
`lease_step(...)` is the Celery consumer step that runs a keeper with it in every worker.
Written against kombu 5.7's QoS and Celery 5.7's consumer (tests/contract/test_kombu_redis.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from typing import Any, cast

import redis
from celery import bootsteps

log = logging.getLogger("fleet.leases")

# Moves each held tag's score forward to ARGV[1], never back; returns the tags not in the set
# (acknowledged meanwhile, or already put back by a sweep: the lease was lost).
_RENEW = """
local lost = {}
for i = 2, #ARGV do
    local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
    if not score then
        lost[#lost + 1] = ARGV[i]
    elseif tonumber(score) < tonumber(ARGV[1]) then
        redis.call('ZADD', KEYS[1], 'XX', ARGV[1], ARGV[i])
    end
end
return lost
"""


def renew_interval(lease: float) -> float:
    """How often a live worker renews: four times a lease, so three renewals may fail in a row."""
    return lease / 4


def sweep_interval(lease: float) -> int:
    """How often each worker looks for expired leases (kombu's `unacked_restore_interval`)."""
    return max(1, min(60, int(lease // 10)))


class RedisLeases:
    """The leases of one Redis broker's messages (kombu's `unacked_index`)."""

    def __init__(self, client: redis.Redis, index_key: str) -> None:
        self._index_key = index_key
        self._renew = client.register_script(_RENEW)

    def renew(self, tags: Collection[str], now: float | None = None) -> list[str]:
        """Extend the leases of `tags` to `now`; returns those no longer leased (one round trip)."""
        if not tags:
            return []
        stamp = time.time() if now is None else now
        lost = self._renew(keys=[self._index_key], args=[repr(stamp), *tags])
        return [tag.decode() if isinstance(tag, bytes) else str(tag) for tag in cast(list[Any], lost)]


class LeaseKeeper(threading.Thread):
    """Renews the leases of what `held()` returns every `interval` seconds, until stopped.

    A failed renewal (Redis unreachable) is logged and tried again at the next interval; a lease
    found lost is logged, since another worker may now run that message too.
    """

    def __init__(self, leases: RedisLeases, held: Callable[[], Collection[str]], interval: float) -> None:
        super().__init__(name="fleet-leases", daemon=True)
        self._leases = leases
        self._held = held
        self._interval = interval
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self._interval):
            self.renew_once()

    def renew_once(self) -> None:
        try:
            lost = self._leases.renew(self._held())
        except Exception as exc:
            log.warning("could not renew the leases of this worker's messages: %s", exc)
            return
        if lost and (still := set(lost) & set(self._held())):  # not those acknowledged meanwhile
            log.warning(
                "%d message(s) this worker holds lost their lease and may run on another worker too: %s",
                len(still),
                sorted(still)[:10],
            )

    def stop(self) -> None:
        self._stopped.set()


def index_key(channel: Any) -> str:
    """kombu's `unacked_index` key of a Redis channel, with its global key prefix."""
    return str(channel.global_keyprefix or "") + str(channel.unacked_index_key)


def kombu_held_tags(channel: Any) -> list[str]:
    """The delivery tags a kombu Redis channel holds: delivered and not yet acknowledged.

    Safe from another thread than the consumer's: the copies below are single C calls under the
    GIL, and a tag acknowledged meanwhile is merely renewed once more (`XX`: never re-added).
    """
    qos = getattr(channel, "_qos", None)  # not `channel.qos`, which would create one
    if qos is None:
        return []
    for _ in range(3):
        try:
            delivered, dirty = list(qos._delivered), set(qos._dirty)
        except RuntimeError:  # changed size during the copy: copy again
            continue
        return [tag for tag in delivered if tag not in dirty]
    return []


def lease_step(connect: Callable[..., redis.Redis], lease: float) -> type[bootsteps.StartStopStep]:
    """A Celery consumer step keeping the leases of what the worker holds (Redis broker only).

    `connect(**socket_options)` makes a client of the broker (infra/redis_clients.py: a Sentinel
    group's master is found again after a failover; `_RENEW` is loaded again on NOSCRIPT by
    redis-py's `Script`).

        One keeper for the consumer's life: it reads the current channel at each renewal, so a
        reconnect needs no new one, and it runs on through a warm shutdown's wait for running tasks
        (Celery stops consumer steps before that wait, and shuts them down after it).
    """

    class LeaseStep(bootsteps.StartStopStep):
        requires = ("celery.worker.consumer.tasks:Tasks",)

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self.keeper: LeaseKeeper | None = None

        def start(self, parent: Any) -> None:
            if self.keeper is not None:
                return
            interval = renew_interval(lease)
            client = connect(socket_timeout=interval, socket_connect_timeout=interval)
            leases = RedisLeases(client, index_key(parent.task_consumer.channel))
            self.keeper = LeaseKeeper(
                leases, lambda: kombu_held_tags(getattr(parent.task_consumer, "channel", None)), interval
            )
            self.keeper.start()

        def stop(self, parent: Any) -> None:
            pass  # running tasks may still finish (a warm shutdown): their leases stay renewed

        def shutdown(self, parent: Any) -> None:
            if self.keeper is not None:
                self.keeper.stop()
                self.keeper = None

    return LeaseStep
