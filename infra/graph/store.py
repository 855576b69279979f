"""The Graph domain's database rows: delta links, the change journal, email send records,
and stored subscriptions (with their clientState secrets)."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update

from handlers.graph.ports import Subscription
from infra.db import insert_for
from infra.graph.schema import graph_changes, graph_delta_links, graph_email_sends, graph_subscriptions


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite drops the offset


class SqlDeltaLinks:
    """Delta links in the handler's transaction: the new link commits with the follow-ups."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get(self, resource: str) -> str | None:
        row = self._connection.execute(
            select(graph_delta_links.c.link).where(graph_delta_links.c.resource == resource)
        ).first()
        return None if row is None else row[0]

    def put(self, resource: str, link: str | None) -> None:
        statement = insert_for(self._connection, graph_delta_links).values(
            resource=resource, link=link, updated_at=_now()
        )
        self._connection.execute(
            statement.on_conflict_do_update(
                index_elements=["resource"], set_={"link": link, "updated_at": _now()}
            )
        )

    def flush(self) -> None:
        return None


class SqlChangeJournal:
    """The change journal, written in the handler's transaction."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._rows: list[dict[str, Any]] = []

    def add(self, *, event_id: str, event_type: str, resource_id: str, data: dict[str, Any]) -> None:
        row = {"event_id": event_id, "event_type": event_type, "resource_id": resource_id}
        self._rows.append({**row, "data": json.dumps(data, default=str), "recorded_at": _now()})

    def flush(self) -> None:
        if self._rows:
            statement = insert_for(self._connection, graph_changes).on_conflict_do_nothing()
            self._connection.execute(statement, self._rows)
            self._rows = []


def journal_entries(engine: Engine, event_type: str | None = None) -> list[dict[str, Any]]:
    """The change journal, oldest first (for operators and tests)."""
    query = select(graph_changes).order_by(graph_changes.c.recorded_at)
    if event_type:
        query = query.where(graph_changes.c.event_type == event_type)
    with engine.connect() as connection:
        return [{**row._asdict(), "data": json.loads(row.data)} for row in connection.execute(query)]


class SqlSendRecords:
    """What was done for an email key, committed at once (the send is outside any transaction)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def draft_for(self, key: str) -> str | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(graph_email_sends.c.draft_id).where(graph_email_sends.c.key == key)
            ).first()
        return row[0] if row and row[0] else None

    def _upsert(self, key: str, values: dict[str, Any]) -> None:
        values = {**values, "updated_at": _now()}
        with self._engine.begin() as connection:
            statement = insert_for(connection, graph_email_sends).values(key=key, **values)
            connection.execute(statement.on_conflict_do_update(index_elements=["key"], set_=values))

    def record_draft(self, key: str, draft_id: str) -> None:
        self._upsert(key, {"draft_id": draft_id or None})

    def record_sent(self, key: str) -> None:
        self._upsert(key, {"sent": True})


class SqlSubscriptions:
    """Stored subscriptions; the webhook reads `id` and `client_state`, and keeps copies of the
    latter that `secrets_changed` is told to drop once a write that could change one commits
    (`save`, `remove`; the webhook does not read the status)."""

    def __init__(
        self, engine: Engine, secrets_changed: Callable[[Collection[str]], object] = lambda _: None
    ) -> None:
        self._engine = engine
        self._secrets_changed = secrets_changed

    def save(self, sub: Subscription) -> None:
        now = _now()
        values = {
            "resource": sub.resource,
            "change_type": sub.change_type,
            "notification_url": sub.notification_url,
            "lifecycle_url": sub.lifecycle_url,
            "client_state": sub.client_state,
            "include_resource_data": sub.include_resource_data,
            "expires_at": sub.expires_at,
            "status": sub.status,
            "updated_at": now,
        }
        with self._engine.begin() as connection:
            statement = insert_for(connection, graph_subscriptions).values(
                id=sub.id, created_at=now, **values
            )
            connection.execute(statement.on_conflict_do_update(index_elements=["id"], set_=values))
        self._secrets_changed([sub.id])

    def set_expiry(self, subscription_id: str, expires_at: datetime) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                update(graph_subscriptions)
                .where(graph_subscriptions.c.id == subscription_id)
                .values(expires_at=expires_at, status="active", updated_at=_now())
            )

    def mark_removed(self, subscription_id: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                update(graph_subscriptions)
                .where(graph_subscriptions.c.id == subscription_id)
                .values(status="removed", updated_at=_now())
            )

    def remove(self, subscription_id: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(delete(graph_subscriptions).where(graph_subscriptions.c.id == subscription_id))
        self._secrets_changed([subscription_id])

    def all(self) -> list[Subscription]:
        with self._engine.connect() as connection:
            rows = connection.execute(select(graph_subscriptions).order_by(graph_subscriptions.c.created_at))
            return [_subscription(row._asdict()) for row in rows]

    def find(self, subscription_id: str) -> Subscription | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(graph_subscriptions).where(graph_subscriptions.c.id == subscription_id)
            ).first()
        return None if row is None else _subscription(row._asdict())


def _subscription(row: dict[str, Any]) -> Subscription:
    return Subscription(
        id=row["id"],
        resource=row["resource"],
        change_type=row["change_type"],
        notification_url=row["notification_url"],
        lifecycle_url=row["lifecycle_url"],
        client_state=row["client_state"],
        expires_at=_aware(row["expires_at"]),
        include_resource_data=bool(row["include_resource_data"]),
        status=row["status"],
    )
