"""The order saga's adapters, built from settings for the composition root."""

from __future__ import annotations

from functools import cached_property

from sqlalchemy import Engine

from handlers.orders.ports import Payments
from handlers.orders.saga import SagaPolicy
from infra.orders.payments import HttpPayments, UnconfiguredPayments
from infra.orders.store import SqlOrderDeadlines
from infra.settings import Settings


class OrderAdapters:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self._settings = settings
        self._engine = engine

    @cached_property
    def payments(self) -> Payments:
        if not self._settings.payments_url:
            return UnconfiguredPayments()
        return HttpPayments(self._settings.payments_url, timeout=self._settings.payments_timeout)

    @cached_property
    def deadlines(self) -> SqlOrderDeadlines:
        return SqlOrderDeadlines(self._engine)

    @cached_property
    def policy(self) -> SagaPolicy:
        return SagaPolicy(step_timeout=self._settings.order_step_timeout)
