"""What a scheduled job is: its target, when it is due (slots), and its run policy.

A job's runs happen at *slots*: fixed instants every beat computes alike (multiples of the interval
since the epoch, or the minutes a cron line matches), so a standby that takes over knows exactly
which slot comes next from the last one the leader fired.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

Overlap = Literal["skip", "allow"]
CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 6))
JOB_KEYS = {"task", "publish", "data", "args", "kwargs", "schedule", "every", "cron", "options", "overlap",
            "timeout", "catch_up", "queue"}  # fmt: skip
MAX_CATCH_UP = 100
"""Most missed slots fired after downtime; older ones are counted as missed."""


class ScheduleError(ValueError):
    """A schedule entry that cannot run; the message names the job."""


@dataclass(frozen=True)
class Cron:
    """A five-field cron line (minute hour day month weekday, UTC; weekday 0 is Sunday)."""

    line: str
    allowed: tuple[frozenset[int], ...]

    @classmethod
    def parse(cls, line: str) -> Cron:
        parts = line.split()
        if len(parts) != len(CRON_FIELDS):
            raise ValueError(f"cron line {line!r} needs 5 fields (minute hour day month weekday)")
        return cls(
            line, tuple(_cron_field(p, lo, hi) for p, (_, lo, hi) in zip(parts, CRON_FIELDS, strict=True))
        )

    def matches(self, moment: datetime) -> bool:
        minute, hour, day, month, weekday = self.allowed
        return (
            moment.minute in minute
            and moment.hour in hour
            and moment.day in day
            and moment.month in month
            and (moment.isoweekday() % 7) in weekday
        )

    def next_after(self, timestamp: float) -> float:
        moment = datetime.fromtimestamp(timestamp, UTC).replace(second=0, microsecond=0) + timedelta(
            minutes=1
        )
        for _ in range(366 * 24 * 60):
            if self.matches(moment):
                return moment.timestamp()
            if moment.hour not in self.allowed[1] or not self._day_matches(moment):
                moment = moment.replace(minute=0) + timedelta(hours=1)  # skip the rest of the hour
            else:
                moment += timedelta(minutes=1)
        raise ValueError(f"cron line {self.line!r} never matches")

    def _day_matches(self, moment: datetime) -> bool:
        _, _, day, month, weekday = self.allowed
        return moment.day in day and moment.month in month and (moment.isoweekday() % 7) in weekday


def _cron_field(text: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            start, stop = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, stop = int(first), int(last)
        else:
            start = stop = int(body)
            if step_text:
                stop = high
        if not (low <= start <= stop <= high) or step < 1:
            raise ValueError(f"cron field {text!r} is outside {low}-{high}")
        values.update(range(start, stop + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Job:
    """One scheduled job: a task to call by name, or an event type to publish."""

    name: str
    task: str | None = None
    publish: str | None = None
    data: Any = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    every: float | None = None
    cron: Cron | None = None
    overlap: Overlap = "skip"
    timeout: float = 60.0
    catch_up: bool = False
    queue: str | None = None
    expires: float | None = None

    @property
    def interval(self) -> float:
        """Seconds between two runs (for a cron line, between its next two matches)."""
        if self.every is not None:
            return self.every
        assert self.cron is not None
        first = self.cron.next_after(datetime.now(UTC).timestamp())
        return self.cron.next_after(first) - first

    def slot_at_or_before(self, timestamp: float) -> float:
        if self.every is not None:
            return math.floor(timestamp / self.every) * self.every
        assert self.cron is not None
        slot = self.cron.next_after(timestamp - self.interval * 2 - 60)
        while (following := self.cron.next_after(slot)) <= timestamp:
            slot = following
        return slot

    def next_slot(self, slot: float) -> float:
        if self.every is not None:
            return round(slot + self.every, 6)
        assert self.cron is not None
        return self.cron.next_after(slot)

    def due_slots(self, last: float | None, now: float) -> tuple[list[float], int]:
        """The slots to fire now and how many were missed (skipped for good)."""
        if last is None:  # never ran: fire the current slot if it has only just begun
            first = self.slot_at_or_before(now)
            return ([first], 0) if 0 <= now - first < min(self.interval, 60.0) else ([], 0)
        due: list[float] = []
        slot = self.next_slot(last)
        while slot <= now:
            due.append(slot)
            slot = self.next_slot(slot)
        if not due:
            return [], 0
        keep = due[-MAX_CATCH_UP:] if self.catch_up else due[-1:]
        return keep, len(due) - len(keep)

    def describe(self) -> str:
        when = (
            f"every {self.every:g}s"
            if self.every is not None
            else f"cron {self.cron.line if self.cron else ''}"
        )
        what = self.task or f"publish {self.publish}"
        return f"{what}, {when}, overlap {self.overlap}, timeout {self.timeout:g}s, catch-up {self.catch_up}"


def job_from_entry(name: str, entry: dict[str, Any]) -> Job:
    """A job from a beat entry (`task` + `schedule` in seconds, as Celery writes them) or a
    configuration entry (`publish` + `every` or `cron`)."""
    unknown = set(entry) - JOB_KEYS
    if unknown:
        raise ScheduleError(f"schedule {name!r}: unknown keys {sorted(unknown)}")
    if bool(entry.get("task")) == bool(entry.get("publish")):
        raise ScheduleError(f"schedule {name!r}: give exactly one of 'task' or 'publish'")
    every = entry.get("every", entry.get("schedule"))
    if (every is None) == (entry.get("cron") is None):
        raise ScheduleError(f"schedule {name!r}: give exactly one of 'every' (seconds) or 'cron'")
    options = dict(entry.get("options") or {})
    try:
        cron = Cron.parse(entry["cron"]) if entry.get("cron") is not None else None
        every_seconds = float(every) if every is not None else None
        if every_seconds is not None and every_seconds <= 0:
            raise ValueError("'every' must be more than 0 seconds")
        interval = every_seconds if every_seconds is not None else 60.0
        timeout = float(entry.get("timeout", max(60.0, interval)))
        if timeout <= 0:
            raise ValueError("'timeout' must be more than 0 seconds")
        overlap = entry.get("overlap", "skip")
        if overlap not in ("skip", "allow"):
            raise ValueError("'overlap' is 'skip' or 'allow'")
        return Job(
            name=name,
            task=entry.get("task"),
            publish=entry.get("publish"),
            data=entry.get("data"),
            args=tuple(entry.get("args") or ()),
            kwargs=dict(entry.get("kwargs") or {}),
            every=every_seconds,
            cron=cron,
            overlap=overlap,
            timeout=timeout,
            catch_up=bool(entry.get("catch_up", False)),
            queue=entry.get("queue", options.get("queue")),
            expires=float(options["expires"]) if "expires" in options else None,
        )
    except (TypeError, ValueError) as exc:
        raise ScheduleError(f"schedule {name!r}: {exc}") from None


def load_jobs(beat_schedule: dict[str, dict[str, Any]], configured: dict[str, dict[str, Any]]) -> list[Job]:
    """The code's beat entries plus those from configuration (`FLEET_SCHEDULES`); names are unique."""
    clash = set(beat_schedule) & set(configured)
    if clash:
        raise ScheduleError(f"configured schedules reuse built-in names: {sorted(clash)}")
    entries = {**beat_schedule, **configured}
    return [job_from_entry(name, entry) for name, entry in sorted(entries.items())]
