"""The Redis broker's messages for a publish, as Celery builds them, without Celery building each.

Celery and kombu take about half a millisecond to build one message (task options, headers,
producer, kombu's envelope), most of a web request's time on two cores. Here Celery builds the
first message of each route (captured, not sent: `captured_sends`); later messages are copies of
it with their own task id, delivery tag, due time and events. Every other field is Celery's own,
so a worker cannot tell the copies from the messages Celery builds
(tests/contract/test_redis_messages.py compares them).

Before trusting a route's template, two messages are built with Celery and compared: if they
differ anywhere but in the fields copies fill in (a Celery release that adds a per-message
header, say), that route's messages are built by Celery every time.

Nor are copies made while anything listens to Celery's publish signals (a tracing library that
stamps each message, say): Celery builds every message then, and sends the signals.

Copies are for messages published outside any task, at attempt 0, without a countdown: what
the web process sends.
"""

from __future__ import annotations

import base64
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from celery import signals
from kombu.utils.json import JSONEncoder, loads

from handlers.envelope import Event
from handlers.registry import Route
from infra.publisher import CeleryPublisher, kwargs_repr
from infra.redis_transport import Send, captured_sends

log = logging.getLogger("fleet.publisher")

FILLED_IN = frozenset(
    {
        ("headers", "id"),
        ("headers", "root_id"),
        ("headers", "fleet_due"),
        ("properties", "correlation_id"),
        ("properties", "delivery_tag"),
    }
)
"""What differs between two messages Celery builds for the same events; a copy sets its own."""

_JSON = JSONEncoder()  # kombu's `dumps` makes one of these per call, with these same settings
_BODY_OPENS = '{"body": "'  # how a template's message text begins: its body is first, and empty


@dataclass(frozen=True)
class _Template:
    key: str
    message: dict[str, Any]  # Celery's, its body emptied and moved first (`fill` splices one in)
    args: Any
    embed: Any

    def fill(self, events: list[str]) -> Send:
        task_id = str(uuid.uuid4())
        shown = kwargs_repr(len(events), 0)
        headers = {
            **self.message["headers"],
            "id": task_id,
            "root_id": task_id,
            "fleet_due": time.time(),
            "kwargsrepr": shown,
        }
        properties = {
            **self.message["properties"],
            "correlation_id": task_id,
            "delivery_tag": str(uuid.uuid4()),
            "kwargsrepr": shown,
        }
        body = _JSON.encode([self.args, {"events": events, "attempt": 0}, self.embed]).encode()
        # The message is encoded with an empty body and the base64 text spliced in: base64 needs
        # no escaping in JSON, and escaping it character by character was a third of the copy.
        rest = _JSON.encode({**self.message, "headers": headers, "properties": properties})
        return self.key, _BODY_OPENS + base64.b64encode(body).decode() + rest[len(_BODY_OPENS) :]


class RedisMessages:
    def __init__(self, publisher: CeleryPublisher) -> None:
        self._publisher = publisher
        self._templates: dict[str, _Template | None] = {}  # None: this route's are Celery-built

    def build(self, events: Sequence[Event]) -> list[Send]:
        """The (list, payload) pairs kombu would LPUSH to publish `events`; raises, sending
        nothing, if any event cannot be routed or is too large."""
        return self.build_messages(self._publisher.messages(events))

    def build_messages(self, messages: Sequence[tuple[Route, list[str]]]) -> list[Send]:
        """The (list, payload) pairs of messages already grouped (`CeleryPublisher.group`)."""
        sends: list[Send] = []
        for route, events_json in messages:
            if route.task not in self._templates:
                self._templates[route.task] = self._learn(route, events_json)
            template = self._templates[route.task]
            if template is None or _publish_observed():
                sends.extend(self._by_celery(route, events_json))
            else:
                sends.append(template.fill(events_json))
        return sends

    def _by_celery(self, route: Route, events_json: list[str]) -> list[Send]:
        with captured_sends() as sends:
            self._publisher.send(route, events_json)
        if len(sends) != 1:
            raise RuntimeError("the broker transport sent the message itself: not a Redis broker?")
        return sends

    def _learn(self, route: Route, events_json: list[str]) -> _Template | None:
        (key, first), (_, second) = self._by_celery(route, events_json) + self._by_celery(route, events_json)
        one, other = loads(first), loads(second)
        varies = _differences(one, other)
        args, kwargs, embed = loads(base64.b64decode(one["body"]))
        expected = (
            one["properties"].get("body_encoding") == "base64"
            and kwargs == {"events": events_json, "attempt": 0}
            and one["headers"]["id"] == one["headers"]["root_id"] == one["properties"]["correlation_id"]
            and one["headers"].get("parent_id") is None
            and one["headers"].get("eta") is None
        )
        if not varies <= FILLED_IN or not expected:
            log.warning(
                "messages of %s are built by Celery each time: its messages vary in %s",
                route.task,
                sorted(varies - FILLED_IN) or "their layout",
            )
            return None
        message = {"body": "", **{name: value for name, value in one.items() if name != "body"}}
        return _Template(key=key, message=message, args=args, embed=embed)


def _differences(one: dict[str, Any], other: dict[str, Any]) -> set[tuple[str, str]]:
    """Where two kombu messages differ: (part, name) for headers and properties, (field, "") else."""
    varies = {
        (name, "")
        for name in one.keys() | other.keys()
        if name not in {"headers", "properties"} and one.get(name) != other.get(name)
    }
    for part in ("headers", "properties"):
        names = one[part].keys() | other[part].keys()
        varies |= {(part, name) for name in names if one[part].get(name) != other[part].get(name)}
    return varies


def _publish_observed() -> bool:
    return bool(signals.before_task_publish.has_listeners() or signals.after_task_publish.has_listeners())
