"""Scheduled jobs without I/O: slots, catch-up, cron lines and the checks on configuration."""

from __future__ import annotations

import ast
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from schedules.beat import BEAT_SCHEDULE
from schedules.jobs import Cron, ScheduleError, job_from_entry, load_jobs, with_overrides


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


AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def _local(text: str, zone: ZoneInfo = AMSTERDAM, fold: int = 0) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone, fold=fold).timestamp()


def test_day_of_month_and_weekday_both_restricted_match_either_as_in_standard_cron() -> None:
    first_or_monday = Cron.parse("0 0 1 * 1")  # 2026-11-22 is a Sunday
    slots = [first_or_monday.next_after(_ts("2026-11-22T00:00:00"))]
    for _ in range(2):
        slots.append(first_or_monday.next_after(slots[-1]))
    assert slots == [_ts("2026-11-23T00:00:00"), _ts("2026-11-30T00:00:00"), _ts("2026-12-01T00:00:00")]


def test_a_cron_line_fires_at_the_wall_clock_time_of_its_time_zone() -> None:
    named = job_from_entry("j", {"publish": "x.y", "cron": "0 8 * * * Europe/Amsterdam"})
    field = job_from_entry("j", {"publish": "x.y", "cron": "0 8 * * *", "tz": "Europe/Amsterdam"})
    for job in (named, field):
        assert job.cron is not None
        assert job.next_slot(_ts("2026-11-22T00:00:00")) == _ts("2026-11-22T07:00:00")  # CET, UTC+1
        assert job.next_slot(_ts("2026-07-01T00:00:00")) == _ts("2026-07-01T06:00:00")  # CEST, UTC+2
        assert job.slot_at_or_before(_ts("2026-11-22T06:59:59")) == _ts("2026-11-21T07:00:00")
        assert "Europe/Amsterdam" in job.describe()


def test_on_the_spring_forward_day_a_daily_time_keeps_its_wall_clock_and_a_skipped_time_fires_once() -> None:
    # 2027-03-28: Amsterdam goes from 02:00 CET straight to 03:00 CEST.
    eight = Cron.parse("0 8 * * *", "Europe/Amsterdam")
    saturday = _local("2027-03-27T08:00")
    sunday = eight.next_after(saturday)
    assert sunday == _local("2027-03-28T08:00")
    assert sunday - saturday == 23 * 3600
    half_past_two = Cron.parse("30 2 * * *", "Europe/Amsterdam")  # never on the clock that day
    slot = half_past_two.next_after(_local("2027-03-27T03:00"))
    assert slot == _local("2027-03-28T03:00")  # the first minute after the jump
    assert half_past_two.next_after(slot) == _local("2027-03-29T02:30")
    assert half_past_two.at_or_before(_local("2027-03-28T12:00")) == slot


def test_on_the_fall_back_day_a_repeated_time_fires_once_and_hourly_lines_fire_in_both_hours() -> None:
    # 2026-10-25: Amsterdam goes from 03:00 CEST back to 02:00 CET; 02:00-02:59 happens twice.
    eight = Cron.parse("0 8 * * *", "Europe/Amsterdam")
    saturday = _local("2026-10-24T08:00")
    assert eight.next_after(saturday) - saturday == 25 * 3600
    half_past_two = Cron.parse("30 2 * * *", "Europe/Amsterdam")
    first = half_past_two.next_after(_local("2026-10-24T03:00"))
    assert first == _local("2026-10-25T02:30", fold=0) == _ts("2026-10-25T00:30:00")
    assert half_past_two.next_after(first) == _local("2026-10-26T02:30")  # not again at 02:30 CET
    second_copy = _local("2026-10-25T02:45", fold=1)
    assert half_past_two.at_or_before(second_copy) == first
    every_half_hour = Cron.parse("*/30 * * * *", "Europe/Amsterdam")
    slots = [every_half_hour.next_after(_ts("2026-10-24T23:50:00"))]
    while len(slots) < 5:
        slots.append(every_half_hour.next_after(slots[-1]))
    assert [s - slots[0] for s in slots] == [0, 1800, 3600, 5400, 7200]  # every 30 min of real time


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"publish": "x.y", "cron": "61 * * * *"}, "out of range"),
        ({"publish": "x.y", "cron": "0 8 * * * Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"publish": "x.y", "cron": "0 8 * * *", "tz": "Nowhere"}, "unknown time zone 'Nowhere'"),
        ({"publish": "x.y", "cron": "0 8 * * * UTC", "tz": "Europe/Amsterdam"}, "'tz' says"),
        ({"publish": "x.y", "every": 5, "tz": "Europe/Amsterdam"}, "time zone of a 'cron' line"),
        ({"publish": "x.y", "cron": "0 0 31 2 *"}, "never matches"),
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


def test_the_schedule_definitions_import_no_sdk() -> None:
    """schedules/ is declarative: the standard library, itself and the cron parser, nothing else."""
    allowed = {*sys.stdlib_module_names, "schedules", "croniter"}
    package = Path(__file__).parents[2] / "schedules"
    imported = {
        (path.name, name.split(".")[0])
        for path in package.glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.level == 0
            else []
        )
    }
    assert {(file, module) for file, module in imported if module not in allowed} == set()


def test_runtime_schedules_take_the_place_of_the_seed_and_a_removal_hides_a_seeded_job() -> None:
    seed = {"kept": {"publish": "a.b", "every": 5}, "changed": {"publish": "a.b", "every": 5},
            "removed": {"publish": "a.b", "every": 5}}  # fmt: skip
    overrides = {
        "changed": {"publish": "a.b", "every": 9},
        "removed": None,
        "added": {"task": "t", "every": 1},
    }
    assert with_overrides(seed, overrides) == {
        "kept": {"publish": "a.b", "every": 5},
        "changed": {"publish": "a.b", "every": 9},
        "added": {"task": "t", "every": 1},
    }
