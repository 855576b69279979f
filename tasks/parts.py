"""What the Celery tasks take from the composition root (workers/bootstrap.py `Fleet`, which
meets this Protocol), so that tasks name the parts they use and never the container's class."""

from __future__ import annotations

from typing import Protocol

from engine.dispatch import Dispatcher
from handlers.orders.ports import OrderDeadlines
from handlers.ports import Clock
from handlers.registry import Registry
from infra.dead_letters import SqlDeadLetters
from infra.delayed import RedisDelayed
from infra.history import SqlHistory
from infra.outbox import SqlOutbox
from infra.publisher import CeleryPublisher
from infra.settings import Settings


class TaskParts(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def registry(self) -> Registry: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def publisher(self) -> CeleryPublisher: ...

    @property
    def outbox(self) -> SqlOutbox: ...

    @property
    def history(self) -> SqlHistory: ...

    @property
    def dead_letters(self) -> SqlDeadLetters: ...

    @property
    def delayed(self) -> RedisDelayed: ...

    @property
    def order_deadlines(self) -> OrderDeadlines: ...

    @property
    def dispatcher(self) -> Dispatcher: ...
