"""Building demo events and sending raw broker messages, for the integration tests."""

from __future__ import annotations

from typing import Any

from handlers.envelope import Event, new_event


def deposit(event_id: str, amount: int = 1, **extra: Any) -> Event:
    return new_event(
        "demo.deposit_recorded", {"account": "acc-1", "amount": amount, **extra}, source="tests", id=event_id
    )


def flaky(event_id: str, **data: Any) -> Event:
    return new_event(
        "demo.flaky_requested", {"account": "acc-1", "amount": 1, **data}, source="tests", id=event_id
    )


def send_raw(
    runtime: Any, queue_name: str, body: bytes, *, content_type: str, headers: dict[str, Any]
) -> None:
    """Put bytes on a fleet queue as a producer that bypasses the fleet's API would."""
    queue = runtime.app.amqp.queues[runtime.settings.queue_name(queue_name)]
    with runtime.app.connection_for_write() as connection:
        connection.Producer().publish(
            body,
            exchange=queue.exchange,
            routing_key=queue.routing_key,
            content_type=content_type,
            content_encoding="utf-8",
            headers=headers,
            declare=[queue],
        )
