"""RabbitMQ's management API (the `rabbitmq_management` plugin), read for the queue gauges.

AMQP can tell a queue's ready count (a passive declare) but never the age of its head message;
the management API tells both: `messages_ready`, and `head_message_timestamp`, the AMQP
`timestamp` property of the message at the head of the queue, which the fleet's publisher sets to
the message's due time on RabbitMQ (infra/publisher.py). Its figures are the broker's statistics,
refreshed every `collect_statistics_interval` (5 s by default), so they lag by up to that.
One GET per read: `/api/queues/<vhost>`, only the columns used.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx


@dataclass(frozen=True, slots=True)
class QueueStats:
    ready: int
    """Messages waiting in the queue (not those delivered to a consumer and not yet acked)."""
    head_timestamp: float | None
    """The `timestamp` property of the head message (epoch seconds), None when the queue is empty
    or its head message carries none."""


class RabbitManagement:
    """`RabbitManagement("http://user:pass@rabbit:15672", vhost="/").queues()`; credentials from the URL."""

    def __init__(self, url: str, vhost: str, timeout: float = 5.0) -> None:
        parts = urlsplit(url)
        self._auth = (
            (unquote(parts.username or ""), unquote(parts.password or "")) if parts.username else None
        )
        netloc = parts.hostname or ""
        if ":" in netloc:  # an IPv6 literal
            netloc = f"[{netloc}]"
        if parts.port:
            netloc += f":{parts.port}"
        self._base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self._vhost = vhost
        self._timeout = timeout

    def queues(self) -> dict[str, QueueStats]:
        """Every queue of the vhost by name; raises on an unreachable API or a refused login."""
        response = httpx.get(
            f"{self._base}/api/queues/{quote(self._vhost, safe='')}",
            params={"columns": "name,messages_ready,head_message_timestamp"},
            auth=self._auth,
            timeout=self._timeout,
        )
        response.raise_for_status()
        return {
            str(queue["name"]): QueueStats(
                ready=int(queue.get("messages_ready") or 0),
                head_timestamp=_stamp(queue.get("head_message_timestamp")),
            )
            for queue in response.json()
        }


def _stamp(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def vhost_of(broker_url: str) -> str:
    """The virtual host an `amqp://` URL names: its path, or `/` when it names none."""
    path = urlsplit(broker_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"
