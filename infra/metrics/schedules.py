"""Schedule metrics, read from Redis at scrape time, so whichever process serves /metrics (the web
process) reports what beat and every worker recorded:

`fleet_schedule_last_success_timestamp_seconds{job}`, `fleet_schedule_runs_total{job,outcome}`
(outcomes in infra/schedules/state.py), `fleet_schedule_interval_seconds{job}` and
`fleet_schedule_paused{job}` (so an alert can ask "no success within its interval, not paused").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from infra.schedules.state import ScheduleState
from schedules.jobs import Job


class ScheduleCollector(Collector):
    """Register with the scraping registry: `ScheduleCollector(lambda: state, lambda: jobs)`; the
    jobs are read at each scrape, as they may change while the fleet runs."""

    def __init__(self, state: Callable[[], ScheduleState], jobs: Callable[[], list[Job]]) -> None:
        self._state = state
        self._jobs = jobs

    def collect(self) -> Iterator[Metric]:
        state = self._state()
        jobs = self._jobs()
        names = [job.name for job in jobs]
        statuses = state.status(names)
        last_success = GaugeMetricFamily(
            "fleet_schedule_last_success_timestamp_seconds",
            "Unix time of the job's last successful run.",
            labels=["job"],
        )
        interval = GaugeMetricFamily(
            "fleet_schedule_interval_seconds", "Seconds between two slots of the job.", labels=["job"]
        )
        paused = GaugeMetricFamily("fleet_schedule_paused", "1 while the job is paused.", labels=["job"])
        for job, status in zip(jobs, statuses, strict=True):
            if status.last_success is not None:
                last_success.add_metric([job.name], status.last_success)
            interval.add_metric([job.name], job.interval)
            paused.add_metric([job.name], 1.0 if status.paused else 0.0)
        runs = CounterMetricFamily(
            "fleet_schedule_runs", "Scheduled slots by outcome (run or skipped).", labels=["job", "outcome"]
        )
        for (job_name, outcome), count in sorted(state.runs().items()):
            if job_name in names:
                runs.add_metric([job_name, outcome], float(count))
        yield from (last_success, runs, interval, paused)
