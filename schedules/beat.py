"""What beat runs, referring to tasks by their stable names: the fleet's own jobs, and the
schedules of the domains that run (handlers/domains.py `Domain.schedules`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "release-due-retries": {"task": "fleet.retries.release_due", "schedule": 1.0, "options": {"expires": 5}},
    "relay-outbox": {"task": "fleet.outbox.relay", "schedule": 5.0, "options": {"expires": 10}},
    "prune-event-history": {"task": "fleet.history.prune", "schedule": 3600.0, "options": {"expires": 600}},
    "archive-old-dead-letters": {
        "task": "fleet.dead_letters.archive_old",
        "schedule": 3600.0,
        "options": {"expires": 600},
    },
}
"""The fleet's own jobs, whichever domains run."""


class Scheduled(Protocol):
    """A domain, as far as its schedules go (handlers/domains.py `Domain`)."""

    @property
    def name(self) -> str: ...

    @property
    def schedules(self) -> Mapping[str, Mapping[str, Any]]: ...


def beat_schedule(domains: Iterable[Scheduled]) -> dict[str, dict[str, Any]]:
    """The fleet's jobs and the domains'; a job name used twice is an error."""
    schedule = {name: dict(entry) for name, entry in BEAT_SCHEDULE.items()}
    for domain in domains:
        for name, entry in domain.schedules.items():
            if name in schedule:
                raise ValueError(f"schedule {name!r} of domain {domain.name!r} is named twice")
            schedule[name] = dict(entry)
    return schedule
