"""The benchmark's figures and how they are printed."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from bench.support import Latency

NOOP_NOTE = "the bare no-op task's body is one Redis INCR, so that the runner can see it finish"
QUEUEING_MS = 50.0
BUSY_ELSEWHERE = 0.2
"""Cores other processes may use during a phase before the figures are flagged as disturbed."""


@dataclass(frozen=True, slots=True)
class Throughput:
    label: str
    unit: str
    items: int
    seconds: float
    """From the first publish until the runner saw the last effect."""
    publish_seconds: float
    other_cores: float
    """CPU other processes on the machine used meanwhile (see support.OtherLoad)."""

    @property
    def rate(self) -> float:
        return self.items / self.seconds


@dataclass(frozen=True, slots=True)
class Repeated:
    """Several runs of one throughput phase; the median run stands for them."""

    runs: tuple[Throughput, ...]

    @property
    def median(self) -> Throughput:
        """The median run by rate (the lower middle one of an even number)."""
        return sorted(self.runs, key=lambda run: run.rate)[(len(self.runs) - 1) // 2]


@dataclass(frozen=True, slots=True)
class LatencyRun:
    label: str
    latency: Latency
    achieved_rate: float
    max_lag_ms: float
    """How late the publisher's latest send was against its schedule."""
    other_cores: float
    tenths: tuple[float, ...]
    """Median latency (ms) of each tenth of the items, in the order sent."""
    cpu_ms: dict[str, float]
    """CPU per item (ms) of the runner (publishing), the workers and the services."""

    @property
    def queued(self) -> bool:
        """Some tenth's median is far above what one small transaction takes (a few ms): items waited
        in the queue, so the workers ran at or near their capacity at this rate."""
        return max(self.tenths) > QUEUEING_MS


@dataclass(frozen=True, slots=True)
class Results:
    fleet: Repeated
    noop: Throughput
    insert: Throughput
    fleet_latency: LatencyRun
    insert_latency: LatencyRun


def disturbed(other_cores: float) -> str:
    if math.isnan(other_cores) or other_cores < BUSY_ELSEWHERE:
        return ""
    return f"  [other processes used {other_cores:.1f} cores meanwhile: figures disturbed]"


def print_throughput(result: Throughput) -> None:
    print(
        f"  {result.label}: {result.items} {result.unit} in {result.seconds:.2f} s = "
        f"{result.rate:,.0f} {result.unit}/s (published in {result.publish_seconds:.2f} s)"
        + disturbed(result.other_cores),
        flush=True,
    )


def print_latency(result: LatencyRun) -> None:
    lat = result.latency
    print(
        f"  {result.label}: p50 {lat.p50:.1f} ms, p90 {lat.p90:.1f}, p99 {lat.p99:.1f}, max {lat.max:.1f} "
        f"({lat.count} at {result.achieved_rate:.0f}/s, publisher at most {result.max_lag_ms:.1f} ms late)"
        + disturbed(result.other_cores),
        flush=True,
    )
    cpu = result.cpu_ms
    print(
        f"    CPU per item: workers {cpu['workers']:.2f} ms, services {cpu['services']:.2f} ms, "
        f"runner {cpu['runner']:.2f} ms (publishing and pacing)",
        flush=True,
    )
    print(
        "    median of each tenth sent, ms: "
        + " ".join(f"{p50:.1f}" for p50 in result.tenths)
        + ("  <- queueing" if result.queued else ""),
        flush=True,
    )


def print_summary(broker: str, rate: float, seconds: float, results: Results) -> None:
    fleet = results.fleet.median
    print(
        f"\n=== summary: broker {broker}, {fleet.items} items a throughput phase, {os.cpu_count()} cores ==="
    )
    _throughput_table([fleet, results.noop, results.insert])
    if len(results.fleet.runs) > 1:
        runs = ", ".join(f"{run.rate:,.0f}" for run in results.fleet.runs)
        print(f"(fleet: median of {len(results.fleet.runs)} runs: {runs} events/s)")
    print(f"({NOOP_NOTE})")
    print(f"\nlatency at {rate:g}/s for {seconds:g} s, one event (task) per message, recorded_at - sent_at")
    _latency_table([results.fleet_latency, results.insert_latency])
    _ratios(results)


def _throughput_table(rows: Sequence[Throughput]) -> None:
    width = max(len(row.label) for row in rows)
    print(
        f"{'throughput':<{width}}  {'seconds':>8}  {'published':>9}  {'per second':>11}        {'other':>5}"
    )
    for row in rows:
        print(
            f"{row.label:<{width}}  {row.seconds:>8.2f}  {row.publish_seconds:>9.2f}  {row.rate:>11,.0f} "
            f"{row.unit + '/s':<8}  {row.other_cores:>5.2f}"
        )


def _latency_table(runs: Sequence[LatencyRun]) -> None:
    width = max(len(run.label) for run in runs)
    print(f"{'ms':<{width}}  {'p50':>7}  {'p90':>7}  {'p99':>7}  {'max':>7}  {'rate/s':>6}  {'other':>5}")
    for run in runs:
        lat = run.latency
        print(
            f"{run.label:<{width}}  {lat.p50:>7.1f}  {lat.p90:>7.1f}  {lat.p99:>7.1f}  {lat.max:>7.1f}  "
            f"{run.achieved_rate:>6.0f}  {run.other_cores:>5.2f}"
        )
    print("(other: cores used meanwhile by processes outside the benchmark and its services)")
    for run in runs:
        if run.queued:
            medians = " ".join(f"{p50:.0f}" for p50 in run.tenths)
            print(
                f"({run.label}: median latency by tenth sent {medians} ms; above {QUEUEING_MS:.0f} ms items "
                "waited in the queue: the workers ran at or near their capacity at this rate)"
            )


def _ratios(results: Results) -> None:
    fleet = results.fleet.median.rate
    vs_noop, vs_insert = fleet / results.noop.rate, fleet / results.insert.rate
    fleet_p99, insert_p99 = results.fleet_latency.latency.p99, results.insert_latency.latency.p99
    print("\nratios")
    print(
        f"fleet / bare Celery no-op throughput:     {vs_noop:6.2f}x  (target >= 10x: {_met(vs_noop >= 10)})"
    )
    print(f"fleet / bare Celery + insert throughput:  {vs_insert:6.2f}x")
    print(
        f"fleet p99 / bare Celery + insert p99:     {fleet_p99 / insert_p99:6.2f}x  "
        f"({fleet_p99:.1f} vs {insert_p99:.1f} ms; target no worse: {_met(fleet_p99 <= insert_p99)})"
    )
    others = [run.other_cores for run in (*results.fleet.runs, results.noop, results.insert)]
    others += [results.fleet_latency.other_cores, results.insert_latency.other_cores]
    if any(disturbed(cores) for cores in others):
        print(
            "\nNOTE: other processes were busy during some phases (column 'other'); rerun on a quiet machine."
        )


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"
