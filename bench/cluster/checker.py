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

    ROW = "{:<28} {:>6} {:>6} {:>7} {:>7} {:>5} {:>6} {:>9} {:>9}"
    HEADER = ROW.format(
        "scenario", "sent", "acked", "effect", "doubled", "lost", "dead", "unack-eff", "recover"
    )

    def line(self) -> str:
        recovery = "-" if self.recovery_seconds is None else f"{self.recovery_seconds:.1f} s"
        return self.ROW.format(
            self.scenario,
            self.sent,
            self.acknowledged,
            self.took_effect,
            self.doubled,
            self.lost,
            self.dead_lettered,
            self.unacknowledged_in_effect,
            recovery,
        )


def read_sent(path: Path) -> dict[str, bool]:
    """Each event id the producer sent, and whether its request was answered 2xx."""
    with path.open(newline="") as source:
        return {row["event_id"]: row["status"].startswith("2") for row in csv.DictReader(source)}


def effects(database_url: str, prefix: str) -> tuple[dict[str, int], set[str], float | None]:
    """Deposits per event id, the dead-lettered ids and the time of the last deposit (epoch)."""
    pattern = prefix.replace("_", r"\_") + "-%"
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT event_id, count(*) FROM demo_deposits WHERE event_id LIKE %s GROUP BY event_id",
            (pattern,),
        ).fetchall()
        letters = connection.execute(
            "SELECT DISTINCT event_id FROM fleet_dead_letters WHERE event_id LIKE %s", (pattern,)
        ).fetchall()
        (last,) = connection.execute(
            "SELECT max(recorded_at) FROM demo_deposits WHERE event_id LIKE %s", (pattern,)
        ).fetchone() or (None,)
    return {event_id: int(count) for event_id, count in rows}, {e for (e,) in letters}, last


def check(scenario: str, sent_csv: Path, database_url: str, prefix: str, fault_end: float | None) -> Figures:
    sent = read_sent(sent_csv)
    counts, letters, last = effects(database_url, prefix)
    acknowledged = {event_id for event_id, ok in sent.items() if ok}
    in_effect = {event_id for event_id in sent if counts.get(event_id, 0) > 0}
    recovery = None if fault_end is None or last is None else max(0.0, float(last) - fault_end)
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
    )


def missing(sent_csv: Path, database_url: str, prefix: str) -> int:
    """Acknowledged events with neither an effect nor a dead letter yet (the harness waits on it)."""
    return len(lost_ids(sent_csv, database_url, prefix))


def lost_ids(sent_csv: Path, database_url: str, prefix: str) -> list[str]:
    """The acknowledged events with no effect and no dead letter, in the order they were sent."""
    sent = read_sent(sent_csv)
    counts, letters, _ = effects(database_url, prefix)
    return [
        event_id for event_id, ok in sent.items() if ok and event_id not in counts and event_id not in letters
    ]
