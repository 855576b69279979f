"""The cache's optional first tier: copies in the process's memory, dropped on broadcast.

A first-tier copy is served only while the process is subscribed to the invalidation channel:
a broadcast missed while disconnected could leave a stale copy, so losing the subscription
clears the tier and turns it off until the subscription is back. Pub/sub is at most once even
when connected (a slow subscriber's buffer can be cut), so copies also live at most `ttl`
seconds: that bounds how stale a copy can ever be.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis

log = logging.getLogger("fleet.cache")


@dataclass(frozen=True, slots=True)
class _Copy:
    raw: bytes
    tags: tuple[str, ...]
    expires_at: float


class LocalTier:
    """At most `max_entries` copies (least recently used go first), each for at most `ttl` s.

    `epoch` counts invalidations seen; a reader notes it before going to Redis and stores its
    copy only if no invalidation arrived meanwhile, so a broadcast racing a read never leaves
    the read's (possibly stale) value behind.
    """

    def __init__(
        self, *, max_entries: int = 10_000, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1 or ttl <= 0:
            raise ValueError("a first tier needs max_entries >= 1 and ttl > 0")
        self.max_entries = max_entries
        self.ttl = ttl
        self._clock = clock
        self._copies: OrderedDict[str, _Copy] = OrderedDict()
        self._lock = threading.Lock()
        self.epoch = 0
        self.active = False
        """True while subscribed to the broadcast; only then are copies kept and served."""

    def get(self, key: str) -> bytes | None:
        with self._lock:
            copy = self._copies.get(key)
            if copy is None or not self.active:
                return None
            if copy.expires_at <= self._clock():
                del self._copies[key]
                return None
            self._copies.move_to_end(key)
            return copy.raw

    def put(self, key: str, raw: bytes, tags: Sequence[str], epoch: int) -> bool:
        """Keep a copy, unless an invalidation arrived since `epoch` was read."""
        with self._lock:
            if not self.active or epoch != self.epoch:
                return False
            self._copies[key] = _Copy(raw, tuple(tags), self._clock() + self.ttl)
            self._copies.move_to_end(key)
            while len(self._copies) > self.max_entries:
                self._copies.popitem(last=False)
            return True

    def drop(
        self, *, keys: Sequence[str] = (), tags: Sequence[str] = (), patterns: Sequence[str] = ()
    ) -> int:
        """Drop copies by key, tag or glob pattern (Redis's `*`, `?` and `[...]`); returns how many."""
        wanted_keys, wanted_tags = set(keys), set(tags)
        with self._lock:
            self.epoch += 1
            doomed = [
                key
                for key, copy in self._copies.items()
                if key in wanted_keys
                or wanted_tags.intersection(copy.tags)
                or any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)
            ]
            for key in doomed:
                del self._copies[key]
            return len(doomed)

    def clear(self, *, active: bool) -> None:
        with self._lock:
            self.epoch += 1
            self._copies.clear()
            self.active = active

    def __len__(self) -> int:
        return len(self._copies)


class InvalidationListener:
    """A daemon thread that applies the channel's broadcasts to a first tier, reconnecting as needed."""

    def __init__(self, client: redis.Redis, channel: str, tier: LocalTier, *, poll: float = 1.0) -> None:
        self._redis = client
        self._channel = channel
        self._tier = tier
        self._poll = poll
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, timeout: float | None = 10.0) -> None:
        """Subscribe and wait until the subscription is confirmed (the tier serves from then on);
        `timeout=None`: do not wait (the tier stays off until then)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="cache-invalidations", daemon=True)
        self._thread.start()
        if timeout is not None and not self._subscribed.wait(timeout):
            raise TimeoutError(f"no subscription to {self._channel} within {timeout}s")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._poll * 3)
            self._thread = None
        self._tier.clear(active=False)

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            pubsub = self._redis.pubsub()  # type: ignore[no-untyped-call]  # untyped in redis-py
            try:
                pubsub.subscribe(self._channel)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=self._poll)
                    if message is not None:
                        self._apply(message)
                        backoff = 0.1
            except Exception:  # whatever broke, copies may now miss a broadcast: off until resubscribed
                log.warning("cache invalidation channel lost; first tier off until back", exc_info=True)
                self._tier.clear(active=False)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                pubsub.close()

    def _apply(self, message: dict[str, object]) -> None:
        if message["type"] == "subscribe":
            self._tier.clear(active=True)  # whatever was missed before is gone with the old copies
            self._subscribed.set()
        elif message["type"] == "message":
            data = message["data"]
            try:
                names = json.loads(data if isinstance(data, bytes | str) else b"{}")
                self._tier.drop(
                    keys=names.get("keys", ()), tags=names.get("tags", ()), patterns=names.get("patterns", ())
                )
            except (ValueError, AttributeError, TypeError):  # not ours or garbled: drop everything
                log.warning("unreadable cache invalidation %r; first tier cleared", data)
                self._tier.clear(active=True)
