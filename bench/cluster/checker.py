"""The cluster bench's checker: what the producer sent and had acknowledged, against what took
effect in PostgreSQL. It imports no fleet code: it reads the producer's record (a CSV file) and
two tables with plain SQL, `demo_deposits` (one row per effect, deliberately not unique) and
`fleet_dead_letters`, so a fault in the fleet's own code cannot hide itself here.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import psycopg


@dataclass(frozen=True)
class Figures:
    scenario: str
    sent: int
    acknowledged: int
    took_effect: int
    doubled: int
    lost: int
    dead_lettered: int
    unacknowledged_in_effect: int
    recovery_seconds: float | None
    """From the fault's end (or the kill) to the last effect of any event."""
    caught_seconds: float | None = None
    """From the fault's end to the last effect of an event sent before it: how long the events
    the fault caught took (the flow goes on after the fault, so the last effect is mostly the
    flow's end)."""

    ROW = "{:<20} {:>6} {:>6} {:>6} {:>7} {:>5} {:>5} {:>9} {:>8} {:>8}"
    HEADER = ROW.format(
        "scenario", "sent", "acked", "effect", "doubled", "lost", "dead", "unack-eff", "recover", "caught"
    )

    def line(self) -> str:
        def seconds(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f} s"

        return self.ROW.format(
            self.scenario,
            self.sent,
            self.acknowledged,
            self.took_effect,
            self.doubled,
            self.lost,
            self.dead_lettered,
            self.unacknowledged_in_effect,
            seconds(self.recovery_seconds),
            seconds(self.caught_seconds),
        )


@dataclass(frozen=True)
class Sent:
    acknowledged: bool
    """Its request was answered 2xx."""
    at: float
    """When the producer sent it (epoch seconds)."""


def read_sent(path: Path) -> dict[str, Sent]:
    """Each event id the producer sent: whether it was acknowledged, and when it was sent."""
    with path.open(newline="") as source:
        return {
            row["event_id"]: Sent(row["status"].startswith("2"), float(row["sent_at"]))
            for row in csv.DictReader(source)
        }


def effects(database_url: str, prefix: str) -> tuple[dict[str, int], set[str], dict[str, float]]:
    """Deposits per event id, the dead-lettered ids, and the time of each event's last deposit
    (epoch seconds, the worker's clock)."""
    pattern = prefix.replace("_", r"\_") + "-%"
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT event_id, count(*), max(recorded_at) FROM demo_deposits WHERE event_id LIKE %s "
            "GROUP BY event_id",
            (pattern,),
        ).fetchall()
        letters = connection.execute(
            "SELECT DISTINCT event_id FROM fleet_dead_letters WHERE event_id LIKE %s", (pattern,)
        ).fetchall()
    counts = {event_id: int(count) for event_id, count, _ in rows}
    last_at = {event_id: float(at) for event_id, _, at in rows}
    return counts, {e for (e,) in letters}, last_at


def check(scenario: str, sent_csv: Path, database_url: str, prefix: str, fault_end: float | None) -> Figures:
    sent = read_sent(sent_csv)
    counts, letters, last_at = effects(database_url, prefix)
    acknowledged = {event_id for event_id, record in sent.items() if record.acknowledged}
    in_effect = {event_id for event_id in sent if counts.get(event_id, 0) > 0}
    last = max(last_at.values(), default=None)
    recovery = None if fault_end is None or last is None else max(0.0, last - fault_end)
    caught = None
    if fault_end is not None:
        before = [
            at for event_id, at in last_at.items() if event_id in sent and sent[event_id].at <= fault_end
        ]
        caught = max(0.0, max(before) - fault_end) if before else None
    return Figures(
        scenario=scenario,
        sent=len(sent),
        acknowledged=len(acknowledged),
        took_effect=len(in_effect),
        doubled=sum(1 for count in counts.values() if count > 1),
        lost=len(acknowledged - in_effect - letters),
        dead_lettered=len(letters & set(sent)),
        unacknowledged_in_effect=len(in_effect - acknowledged),
        recovery_seconds=recovery,
        caught_seconds=caught,
    )


def missing(sent_csv: Path, database_url: str, prefix: str) -> int:
    """Acknowledged events with neither an effect nor a dead letter yet (the harness waits on it)."""
    return len(lost_ids(sent_csv, database_url, prefix))


def lost_ids(sent_csv: Path, database_url: str, prefix: str) -> list[str]:
    """The acknowledged events with no effect and no dead letter, in the order they were sent."""
    sent = read_sent(sent_csv)
    counts, letters, _ = effects(database_url, prefix)
    return [
        event_id
        for event_id, record in sent.items()
        if record.acknowledged and event_id not in counts and event_id not in letters
    ]
