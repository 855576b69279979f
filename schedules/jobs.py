"""What a scheduled job is: its target, when it is due (slots), and its run policy.

A job's runs happen at *slots*: fixed instants every beat computes alike (multiples of the interval
since the epoch, or the minutes a cron line matches), so a standby that takes over knows exactly
which slot comes next from the last one the leader fired.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

Overlap = Literal["skip", "allow"]
JOB_KEYS = {"task", "publish", "data", "args", "kwargs", "schedule", "every", "cron", "options", "overlap",
            "timeout", "catch_up", "queue", "tz"}  # fmt: skip
UTC_ZONE = ZoneInfo("UTC")
MAX_CATCH_UP = 100
"""Most missed slots fired after downtime; older ones are counted as missed."""


class ScheduleError(ValueError):
    """A schedule entry that cannot run; the message names the job."""


@dataclass(frozen=True)
class Cron:
    """A five-field cron line (minute hour day month weekday; weekday 0 is Sunday) in a time zone.

    Standard cron semantics (croniter's): when both day-of-month and weekday are restricted, a day
    matching either one matches. Across daylight-saving changes, as cron does: a time skipped when
    the clocks go forward fires at the first minute after the jump; a time that happens twice when
    they go back fires once (at its first occurrence), unless the hour field is a wildcard or a
    step (`*`, `*/2`), whose slots are counted in elapsed hours and so fire in both.
    """

    line: str
    zone: ZoneInfo = UTC_ZONE

    @classmethod
    def parse(cls, line: str, tz: str | None = None) -> Cron:
        """`line` is five fields, optionally followed by a time zone (`0 8 * * * Europe/Amsterdam`);
        `tz` names one too (both may be given only if they agree)."""
        parts = line.split()
        if len(parts) == 6 and not parts[0].startswith("@"):
            if tz is not None and tz != parts[5]:
                raise ValueError(f"cron line {line!r} names time zone {parts[5]!r}, 'tz' says {tz!r}")
            tz = parts.pop()
        elif len(parts) == 2 and parts[0].startswith("@"):  # `@daily Europe/Amsterdam`
            tz = parts.pop()
        if len(parts) != 5 and not (len(parts) == 1 and parts[0].startswith("@")):
            raise ValueError(
                f"cron line {line!r} needs 5 fields (minute hour day month weekday) and may name a time zone"
            )
        zone = _zone(tz) if tz is not None else UTC_ZONE
        expression = " ".join(parts)
        try:
            croniter(expression)
        except CroniterError as exc:
            raise ValueError(f"cron line {line!r}: {exc}") from None
        cron = cls(expression, zone)
        try:
            cron.next_after(0.0)
        except CroniterBadDateError:
            raise ValueError(f"cron line {line!r} never matches") from None
        return cron

    @property
    def text(self) -> str:
        return self.line if self.zone.key == "UTC" else f"{self.line} {self.zone.key}"

    @property
    def _twice_in_fall_back(self) -> bool:
        """Whether a slot in the repeated hour of a fall-back day fires in both of its copies."""
        fields = self.line.split()
        return len(fields) == 5 and fields[1].startswith("*")

    def next_after(self, timestamp: float) -> float:
        """The first slot strictly after `timestamp`."""
        iterator = croniter(self.line, datetime.fromtimestamp(timestamp, self.zone))
        while True:
            moment: datetime = iterator.get_next(datetime)
            if not self._repeats(moment):
                return moment.timestamp()

    def at_or_before(self, timestamp: float) -> float:
        """The last slot at or before `timestamp` (slots are whole minutes)."""
        next_minute = math.floor(timestamp / 60) * 60 + 60
        iterator = croniter(self.line, datetime.fromtimestamp(next_minute, self.zone))
        while True:
            moment: datetime = iterator.get_prev(datetime)
            if not self._repeats(moment):
                return moment.timestamp()

    def _repeats(self, moment: datetime) -> bool:
        """`moment` is the second occurrence of a wall-clock time (the clocks went back), and this
        line fires such a time only once."""
        local = moment.astimezone(self.zone)
        if local.fold == 0 or self._twice_in_fall_back:
            return False
        first = local.replace(fold=0)
        return first.utcoffset() != local.utcoffset()


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as 'Europe/Amsterdam')") from None


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
        return self.cron.at_or_before(timestamp)

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
            else f"cron {self.cron.text if self.cron else ''}"
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
        if entry.get("tz") is not None and entry.get("cron") is None:
            raise ValueError("'tz' is the time zone of a 'cron' line")
        cron = Cron.parse(entry["cron"], entry.get("tz")) if entry.get("cron") is not None else None
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


def with_overrides(
    seed: dict[str, dict[str, Any]], overrides: dict[str, dict[str, Any] | None]
) -> dict[str, dict[str, Any]]:
    """The configured entries in force: the seed (`FLEET_SCHEDULES`), with each runtime override
    (an entry added or changed, or None: removed) taking the place of the seed's entry."""
    merged = {**seed, **{name: entry for name, entry in overrides.items() if entry is not None}}
    return {name: entry for name, entry in merged.items() if overrides.get(name, entry) is not None}


def unknown_targets(jobs: list[Job], tasks: Collection[str], event_types: Collection[str]) -> list[str]:
    """A line per job whose task or event type does not exist."""
    return [
        f"{job.name}: no task {job.task!r}" if job.task else f"{job.name}: no event type {job.publish!r}"
        for job in jobs
        if (job.task and job.task not in tasks) or (job.publish and job.publish not in event_types)
    ]


def load_jobs(beat_schedule: dict[str, dict[str, Any]], configured: dict[str, dict[str, Any]]) -> list[Job]:
    """The code's beat entries plus those from configuration (`FLEET_SCHEDULES`); names are unique."""
    clash = set(beat_schedule) & set(configured)
    if clash:
        raise ScheduleError(f"configured schedules reuse built-in names: {sorted(clash)}")
    entries = {**beat_schedule, **configured}
    return [job_from_entry(name, entry) for name, entry in sorted(entries.items())]
