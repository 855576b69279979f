"""Scheduled jobs without I/O: slots, catch-up, cron lines and the checks on configuration."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schedules.beat import BEAT_SCHEDULE
from schedules.jobs import Cron, ScheduleError, job_from_entry, load_jobs


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_interval_slots_are_the_same_on_every_beat() -> None:
    job = job_from_entry("j", {"task": "t", "schedule": 5.0})
    assert job.slot_at_or_before(1003.2) == 1000.0
    assert job.next_slot(1000.0) == 1005.0
    assert job.due_slots(1000.0, 1004.9) == ([], 0)
    assert job.due_slots(1000.0, 1005.0) == ([1005.0], 0)


def test_without_catch_up_only_the_latest_missed_slot_runs() -> None:
    job = job_from_entry("j", {"task": "t", "every": 10})
    assert job.due_slots(1000.0, 1041.0) == ([1040.0], 3)


def test_with_catch_up_every_missed_slot_runs_up_to_a_limit() -> None:
    job = job_from_entry("j", {"task": "t", "every": 10, "catch_up": True})
    assert job.due_slots(1000.0, 1041.0) == ([1010.0, 1020.0, 1030.0, 1040.0], 0)
    slots, missed = job.due_slots(0.0, 10_000.0)
    assert (len(slots), missed, slots[-1]) == (100, 900, 10_000.0)


def test_a_job_that_never_ran_starts_at_the_current_slot_only_if_it_just_began() -> None:
    cron = job_from_entry("j", {"publish": "x.y", "cron": "0 3 * * *"})
    assert cron.due_slots(None, _ts("2026-11-22T03:00:20")) == ([_ts("2026-11-22T03:00:00")], 0)
    assert cron.due_slots(None, _ts("2026-11-22T10:00:00")) == ([], 0)


def test_cron_lines() -> None:
    every_15 = Cron.parse("*/15 * * * *")
    assert every_15.next_after(_ts("2026-11-22T10:07:00")) == _ts("2026-11-22T10:15:00")
    weekdays = Cron.parse("30 9 * * 1-5")  # 2026-11-22 is a Sunday
    assert weekdays.next_after(_ts("2026-11-21T12:00:00")) == _ts("2026-11-23T09:30:00")
    first_of_month = Cron.parse("0 0 1 * *")
    assert first_of_month.next_after(_ts("2026-11-22T00:00:00")) == _ts("2026-12-01T00:00:00")
    job = job_from_entry("j", {"publish": "x.y", "cron": "0 * * * *"})
    assert job.interval == 3600
    assert job.slot_at_or_before(_ts("2026-11-22T10:59:59")) == _ts("2026-11-22T10:00:00")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"publish": "x.y", "cron": "61 * * * *"}, "outside 0-59"),
        ({"publish": "x.y", "cron": "* * *"}, "needs 5 fields"),
        ({"publish": "x.y"}, "exactly one of 'every'"),
        ({"publish": "x.y", "task": "t", "every": 1}, "exactly one of 'task' or 'publish'"),
        ({"publish": "x.y", "every": 0}, "more than 0"),
        ({"publish": "x.y", "every": 1, "overlap": "queue"}, "'skip' or 'allow'"),
        ({"publish": "x.y", "every": 1, "evry": 2}, "unknown keys ['evry']"),
    ],
)
def test_bad_entries_are_refused_by_name(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ScheduleError, match="schedule 'bad'") as caught:
        job_from_entry("bad", entry)
    assert message in str(caught.value)


def test_the_fleets_own_jobs_load_and_configured_ones_may_not_shadow_them() -> None:
    jobs = load_jobs(BEAT_SCHEDULE, {"nightly": {"publish": "x.y", "cron": "0 3 * * *"}})
    assert {job.name for job in jobs} == {*BEAT_SCHEDULE, "nightly"}
    assert all(job.overlap == "skip" and job.timeout > 0 for job in jobs)
    with pytest.raises(ScheduleError, match="reuse built-in names"):
        load_jobs(BEAT_SCHEDULE, {"relay-outbox": {"publish": "x.y", "every": 1}})
