"""The stand-in's entities: queues with a dead-letter sub-queue, peek-lock, scheduling, deferral,
duplicate detection by message id, and sessions. Pure state, driven by the AMQP server
(server.py) on its one reactor thread."""

from __future__ import annotations

import heapq
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from proton import Message


@dataclass
class Stored:
    seq: int
    message: Message
    enqueued_at: float
    delivery_count: int = 0
    deferred: bool = False


@dataclass
class Lock:
    seq: int
    until: float
    owner: object
    """The link holding it: its deliveries settle the message."""


@dataclass
class Entity:
    """A queue, or a queue's `$DeadLetterQueue`."""

    name: str
    requires_session: bool = False
    messages: dict[int, Stored] = field(default_factory=dict)
    ready: dict[str | None, list[int]] = field(default_factory=dict)
    """Available sequence numbers, a heap per session (one, None, without sessions)."""
    scheduled: list[tuple[float, int]] = field(default_factory=list)
    locks: dict[uuid.UUID, Lock] = field(default_factory=dict)
    seen_ids: dict[str, float] = field(default_factory=dict)
    session_owners: dict[str, tuple[object, float]] = field(default_factory=dict)

    def session_of(self, seq: int) -> str | None:
        if not self.requires_session:
            return None
        group = self.messages[seq].message.group_id
        return str(group) if group is not None else None

    def make_ready(self, seq: int) -> None:
        heapq.heappush(self.ready.setdefault(self.session_of(seq), []), seq)


class Store:
    def __init__(
        self, *, lock_duration: float, max_delivery_count: int, duplicate_window: float, sessions: set[str]
    ) -> None:
        self.lock_duration = lock_duration
        self.max_delivery_count = max_delivery_count
        self.duplicate_window = duplicate_window
        self._sessions = sessions
        self._entities: dict[str, Entity] = {}
        self._seq = 0

    def entity(self, name: str) -> Entity:
        if name not in self._entities:
            base = name.split("/", 1)[0]
            self._entities[name] = Entity(name, requires_session=base in self._sessions and base == name)
        return self._entities[name]

    # -- sending ------------------------------------------------------------------------------

    def enqueue(self, name: str, message: Message, *, at: float | None = None) -> int | None:
        """Store a message; returns its sequence number, or None for a duplicate (dropped)."""
        entity = self.entity(name)
        now = time.time()
        if message.id is not None:
            key = str(message.id)
            seen = entity.seen_ids.get(key)
            if seen is not None and now - seen < self.duplicate_window:
                return None
            entity.seen_ids[key] = now
        annotations = dict(message.annotations or {})
        scheduled = annotations.get("x-opt-scheduled-enqueue-time")
        due = at if at is not None else (float(scheduled) / 1000 if scheduled is not None else now)
        self._seq += 1
        annotations["x-opt-sequence-number"] = self._seq
        message.annotations = annotations
        entity.messages[self._seq] = Stored(self._seq, message, enqueued_at=max(now, due))
        if due > now:
            heapq.heappush(entity.scheduled, (due, self._seq))
        else:
            entity.make_ready(self._seq)
        return self._seq

    # -- receiving ----------------------------------------------------------------------------

    def tick(self) -> None:
        """Release due scheduled messages and messages whose lock expired."""
        now = time.time()
        for entity in list(self._entities.values()):
            while entity.scheduled and entity.scheduled[0][0] <= now:
                entity.make_ready(heapq.heappop(entity.scheduled)[1])
            for token, lock in list(entity.locks.items()):
                if lock.until <= now:
                    del entity.locks[token]
                    self._return(entity, lock.seq)

    def take(self, name: str, owner: object, session: str | None) -> tuple[uuid.UUID, Stored] | None:
        """Lock the next available message (of `session`, if given) for `owner`."""
        entity = self.entity(name)
        heap = entity.ready.get(session if entity.requires_session else None, [])
        while heap:
            seq = heapq.heappop(heap)
            if seq not in entity.messages:
                continue
            stored = entity.messages[seq]
            stored.delivery_count += 1
            token = uuid.uuid4()
            entity.locks[token] = Lock(seq, time.time() + self.lock_duration, owner)
            return token, stored
        return None

    def settle(self, name: str, token: uuid.UUID, outcome: str, info: dict[str, Any] | None = None) -> bool:
        """Apply a settlement; False when the lock is unknown or lost."""
        entity = self.entity(name)
        lock = entity.locks.pop(token, None)
        if lock is None:
            return False
        stored = entity.messages[lock.seq]
        if outcome == "complete":
            del entity.messages[lock.seq]
        elif outcome == "abandon":
            self._return(entity, lock.seq)
        elif outcome == "defer":
            stored.deferred = True
        elif outcome == "dead-letter":
            self.dead_letter(entity, lock.seq, info or {})
        return True

    def renew(self, name: str, token: uuid.UUID) -> float | None:
        lock = self.entity(name).locks.get(token)
        if lock is None:
            return None
        lock.until = time.time() + self.lock_duration
        return lock.until

    def _return(self, entity: Entity, seq: int) -> None:
        stored = entity.messages[seq]
        if stored.delivery_count >= self.max_delivery_count and not entity.name.endswith("$DeadLetterQueue"):
            reason = "MaxDeliveryCountExceeded"
            description = f"Message could not be consumed after {self.max_delivery_count} delivery attempts."
            self.dead_letter(
                entity, seq, {"DeadLetterReason": reason, "DeadLetterErrorDescription": description}
            )
            return
        entity.make_ready(seq)

    def dead_letter(self, entity: Entity, seq: int, info: dict[str, Any]) -> None:
        stored = entity.messages.pop(seq)
        message = stored.message
        properties = dict(message.properties or {})
        for key in ("DeadLetterReason", "DeadLetterErrorDescription"):
            if info.get(key) is not None:
                properties[key] = str(info[key])
        message.properties = properties
        annotations = dict(message.annotations or {})
        annotations["x-opt-deadletter-source"] = entity.name
        dlq = self.entity(f"{entity.name}/$DeadLetterQueue")
        self._seq += 1
        # The dead-letter queue numbers its messages itself; peek pages by that number.
        annotations["x-opt-sequence-number"] = self._seq
        message.annotations = annotations
        dlq.messages[self._seq] = Stored(self._seq, message, enqueued_at=time.time())
        dlq.make_ready(self._seq)

    def peek(self, name: str, from_seq: int, count: int) -> list[Stored]:
        entity = self.entity(name)
        return [entity.messages[s] for s in sorted(entity.messages) if s >= from_seq][:count]

    def count(self, name: str) -> int:
        return len(self.entity(name).messages)

    # -- sessions -----------------------------------------------------------------------------

    def lock_session(self, name: str, owner: object, wanted: str | None) -> str | None:
        """Lock `wanted`, or the next session with messages no one holds; None when none is free."""
        entity = self.entity(name)
        now = time.time()
        held = {sid for sid, (_, until) in entity.session_owners.items() if until > now}
        if wanted is not None:
            candidates = [wanted] if wanted not in held else []
        else:
            waiting = [(heap[0], sid) for sid, heap in entity.ready.items() if heap and sid is not None]
            candidates = [sid for _, sid in sorted(waiting) if sid not in held]
        if not candidates:
            return None
        entity.session_owners[candidates[0]] = (owner, now + self.lock_duration)
        return candidates[0]

    def release_session(self, name: str, session: str | None) -> None:
        if session is not None:
            self.entity(name).session_owners.pop(session, None)

    def renew_session(self, name: str, session: str) -> float:
        entity = self.entity(name)
        owner, _ = entity.session_owners.get(session, (None, 0.0))
        until = time.time() + self.lock_duration
        entity.session_owners[session] = (owner, until)
        return until
