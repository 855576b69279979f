"""A Celery consumer that dead-letters what stock Celery throws away.

Stock Celery acknowledges a message it cannot decode (malformed JSON, a content type other than
JSON) and rejects one naming an unknown task: either way the message is gone. Here both go to the
dead-letter queue with the raw body and the reason first, then leave the broker. A body that
is not clean UTF-8 is stored as `base64:<data>`. `StrayEntrySink` does the same for a Redis
queue entry that is no message at all (infra/redis_transport.py).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from celery.worker.consumer import Consumer

from engine.ports import DeadLetterStore
from engine.records import DeadLetter, fingerprint
from infra.dead_letters import readable_body

log = logging.getLogger("fleet.consumer")
REQUEUE_PAUSE = 1.0


def dead_lettering_consumer(dead_letters: Callable[[], DeadLetterStore]) -> type[Consumer]:
    class DeadLetteringConsumer(Consumer):
        def on_decode_error(self, message: Any, exc: Exception) -> None:
            _bury(dead_letters, message, exc)

        def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
            _bury(dead_letters, message, exc)

        def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
            _bury(dead_letters, message, exc)

        def on_unknown_message(self, body: Any, message: Any) -> None:
            _bury(dead_letters, message, ValueError("not a Celery task message"))

    return DeadLetteringConsumer


class StrayEntrySink:
    """Dead-letters a Redis queue entry that is not a message, raw; raises if the store fails.

    It rides in the broker's transport options, which a worker's `stats` reply encodes as JSON:
    `__json__` (kombu's encoder hook) names it there.
    """

    def __init__(self, dead_letters: Callable[[], DeadLetterStore]) -> None:
        self._dead_letters = dead_letters

    def __call__(self, raw: bytes, queue: str, reason: str) -> None:
        letter = DeadLetter(
            handler="fleet.consumer",
            event_type="?",
            source="fleet:broker",
            event_id=hashlib.sha256(raw).hexdigest(),
            queue=queue,
            envelope=readable_body(raw),
            attempts=1,
            error_type="StrayEntry",
            error_message=reason,
            traceback="",
            fingerprint=fingerprint("StrayEntry@consumer", None),
        )
        self._dead_letters().add(letter)
        log.error("stray entry on %s dead-lettered: %s", queue, reason)

    def __json__(self) -> str:
        return "dead-letter store"


def _bury(dead_letters: Callable[[], DeadLetterStore], message: Any, exc: Exception) -> None:
    body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
    headers = message.headers or {}
    queue = str((message.delivery_info or {}).get("routing_key") or "?")
    error_type = type(exc).__name__
    letter = DeadLetter(
        handler=str(headers.get("task") or "fleet.consumer")[:200],
        event_type="?",
        source="fleet:broker",
        event_id=str(headers.get("id") or hashlib.sha256(body).hexdigest()),
        queue=queue,
        envelope=readable_body(body),
        attempts=1,
        error_type=error_type,
        error_message=f"{exc} (content type {message.content_type!r})",
        traceback="",
        fingerprint=fingerprint(f"{error_type}@consumer", None),
    )
    try:
        dead_letters().add(letter)
    except Exception:
        log.critical(
            "could not dead-letter an undeliverable message; returning it to the broker", exc_info=True
        )
        time.sleep(REQUEUE_PAUSE)  # the store is down: do not spin on the message meanwhile
        message.reject(requeue=True)
        return
    log.error("undeliverable message on %s dead-lettered: %s: %s", queue, error_type, exc)
    message.ack()
