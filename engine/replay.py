"""Replaying dead letters: the same event, same id, sent again from attempt one.

An event that took effect after all (a replay twice over, a letter for a duplicate) stays a
no-op, because the ledger still knows it. Letters whose envelope was never a valid event (an
undecodable broker message) cannot be replayed; they are reported, not touched.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.ports import DeadLetterStore
from engine.records import Filter
from handlers.envelope import parse_event
from handlers.errors import PermanentError
from handlers.ports import Publisher


@dataclass
class ReplayReport:
    replayed: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)


def replay(
    dead_letters: DeadLetterStore,
    publisher: Publisher,
    where: Filter,
    *,
    edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    limit: int = 10_000,
) -> ReplayReport:
    report = ReplayReport()
    for letter in dead_letters.find(where, limit=limit):
        try:
            envelope = json.loads(letter.envelope)
            if edit is not None:
                envelope = edit(envelope)
            event = parse_event(envelope)
            publisher.publish([event])
        except (ValueError, PermanentError) as exc:
            report.refused[letter.id] = str(exc)
            continue
        dead_letters.mark_replayed([letter.id])
        report.replayed.append(letter.id)
    return report
