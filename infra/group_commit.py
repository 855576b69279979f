"""Group commit for threads: concurrent publishes of one process share broker round trips.

A call that finds no send under way sends its own items at once: nothing lingers. Calls that
arrive while one is under way wait in line; when it ends, the first of them sends the items of
every call in line (up to `max_items`) in one send, and the turn passes on. Each call returns,
or raises its own outcome, once the send that carried its items has ended.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

GroupSend = Callable[[list[Sequence[T]]], list[BaseException | None]]
"""Sends the items of several calls at once; returns each call's outcome (None: sent)."""


@dataclass(eq=False)
class _Call(Generic[T]):
    items: Sequence[T]
    woken: threading.Event = field(default_factory=threading.Event)
    leads: bool = False  # woken to send the next group, not with an outcome
    outcome: BaseException | None = None


class GroupCommit(Generic[T]):
    def __init__(self, send: GroupSend[T], max_items: int = 5000) -> None:
        self._send = send
        self._max_items = max_items
        self._lock = threading.Lock()
        self._line: deque[_Call[T]] = deque()
        self._busy = False

    def submit(self, items: Sequence[T]) -> None:
        """Returns once the items are sent; raises the send's outcome for them otherwise."""
        call = _Call(items)
        with self._lock:
            waits = self._busy
            if waits:
                self._line.append(call)
            self._busy = True
        if waits:
            call.woken.wait()  # bounded: every send is (the broker adapters' timeouts)
            if not call.leads:
                if call.outcome is not None:
                    raise call.outcome
                return
        self._lead(call)

    def _lead(self, first: _Call[T]) -> None:
        group = [first]
        with self._lock:
            size = len(first.items)
            while self._line and size + len(self._line[0].items) <= self._max_items:
                size += len(self._line[0].items)
                group.append(self._line.popleft())
        try:
            outcomes = self._send([call.items for call in group])
        except BaseException as exc:  # every caller hears of it, whatever it was
            outcomes = [exc] * len(group)
        finally:
            self._pass_the_turn()
        for call, outcome in zip(group[1:], outcomes[1:], strict=True):
            call.outcome = outcome
            call.woken.set()
        if outcomes[0] is not None:
            raise outcomes[0]

    def _pass_the_turn(self) -> None:
        with self._lock:
            if self._line:
                following = self._line.popleft()
                following.leads = True
                following.woken.set()
            else:
                self._busy = False
