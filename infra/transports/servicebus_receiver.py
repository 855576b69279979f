"""The Service Bus side of the bridge, on the `azure-servicebus` SDK: a connection with session
lock renewal, one receiver at a time on the queue (or on its next free session), and settling
what was received. Namespace failures surface as `SERVICEBUS_FAILURES`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from azure.servicebus import NEXT_AVAILABLE_SESSION, AutoLockRenewer, ServiceBusClient, ServiceBusReceiver
from azure.servicebus.exceptions import OperationTimeoutError, ServiceBusError

from infra.transports.servicebus_client import ServiceBusConnection

log = logging.getLogger("fleet.bridge.servicebus")
SERVICEBUS_FAILURES: tuple[type[Exception], ...] = (ServiceBusError,)


class Receiver:
    """A peek-lock receiver on the queue or on one session; messages are the SDK's, opaque here."""

    def __init__(self, receiver: ServiceBusReceiver) -> None:
        self._receiver = receiver

    def receive(self, count: int, max_wait: float) -> list[Any]:
        return list(self._receiver.receive_messages(max_message_count=count, max_wait_time=max_wait))

    def complete(self, message: Any) -> None:
        self._receiver.complete_message(message)

    def dead_letter(self, message: Any, *, reason: str, description: str) -> None:
        self._receiver.dead_letter_message(message, reason=reason, error_description=description)

    def renew_lock(self, message: Any) -> bool:
        """False when the message was settled meanwhile or its lock is lost."""
        try:
            self._receiver.renew_message_lock(message)
            return True
        except (ServiceBusError, ValueError) as exc:
            log.debug("lock of %s not renewed: %s", message.message_id, exc)
            return False


def lock_seconds_left(message: Any) -> float | None:
    """Seconds until the message's lock expires; None when it holds none (a session's message)."""
    locked_until: datetime | None = message.locked_until_utc
    return None if locked_until is None else (locked_until - datetime.now(UTC)).total_seconds()


class QueueReceiving:
    """Receivers on one queue over the process's client; after a failure the client is made anew
    (the bridge's reconnect), and the held session's lock is renewed meanwhile."""

    def __init__(
        self,
        connection: ServiceBusConnection,
        queue: str,
        *,
        sessions: bool,
        lock_renewal: float,
        max_wait: float,
    ) -> None:
        self._connection = connection
        self._queue = queue
        self._sessions = sessions
        self._lock_renewal = lock_renewal
        self.max_wait = max_wait

    @contextmanager
    def connected(self) -> Iterator[Connection]:
        with self._connection.in_use() as client, AutoLockRenewer(self._lock_renewal) as renewer:
            yield Connection(self, client, renewer)


class Connection:
    def __init__(self, receiving: QueueReceiving, client: ServiceBusClient, renewer: AutoLockRenewer) -> None:
        self._of = receiving
        self._client = client
        self._renewer = renewer

    @contextmanager
    def receiver(self) -> Iterator[Receiver | None]:
        """The queue's receiver, or the next free session's; None when no session is free."""
        of = self._of
        options: dict[str, Any] = {"max_wait_time": of.max_wait, "prefetch_count": 0}
        if of._sessions:
            options["session_id"] = NEXT_AVAILABLE_SESSION
        try:
            receiver = self._client.get_queue_receiver(of._queue, **options)
            receiver.__enter__()
        except OperationTimeoutError:  # no session is free
            yield None
            return
        try:
            if of._sessions:
                session = receiver.session
                if session.locked_until_utc is None:  # attached without a session: none free
                    yield None
                    return
                self._renewer.register(receiver, session)
                log.info("holding session %s", session.session_id)
            yield Receiver(receiver)
        finally:
            receiver.__exit__(None, None, None)
