"""Schedule state in Redis: the beat leader lock, each job's last fired slot, pauses, running
guards and run outcomes, shared by every beat, worker, web process and the CLI. The keys are
listed in infra/keys.py (`beat:leader`, `schedule:…`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

import redis

from infra import keys

# Fencing: a beat fires a slot only while it still holds the lock, and only if no other beat fired
# it first (compare-and-set of `last_slot`), so a deposed leader that wakes up late fires nothing.
_CLAIM_SLOT = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end
local last = redis.call('hget', KEYS[2], 'last_slot') or ''
if last ~= ARGV[2] then return 0 end
redis.call('hset', KEYS[2], 'last_slot', ARGV[3])
return 1
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""

HISTORY_LENGTH = 200
OUTCOMES = ("succeeded", "failed", "timed_out", "skipped_overlap", "skipped_paused", "missed")
"""`succeeded`/`failed`/`timed_out`: a run; `skipped_*`: a slot not run (still going, paused);
`missed`: a slot lost to beat downtime with catch-up off."""


@dataclass(frozen=True)
class JobStatus:
    name: str
    last_slot: float | None
    paused: bool
    running: bool
    last_success: float | None
    last_started: float | None
    last_outcome: str | None
    last_error: str | None


def _float(value: Any) -> float | None:
    return float(value) if value else None


def _text(value: Any) -> str:
    """Redis replies are bytes (the client does not decode)."""
    return value.decode() if isinstance(value, bytes) else str(value or "")


class ScheduleState:
    """Every read and write of schedule state; one instance per process."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix
        self._claim = client.register_script(_CLAIM_SLOT)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    @property
    def leader_key(self) -> str:
        return keys.beat_leader(self._prefix)

    def job_key(self, job: str) -> str:
        return keys.schedule(self._prefix, job)

    def running_key(self, job: str) -> str:
        return keys.schedule_running(self._prefix, job)

    def history_key(self, job: str) -> str:
        return keys.schedule_history(self._prefix, job)

    @property
    def runs_key(self) -> str:
        return keys.schedule_runs(self._prefix)

    # -- the leader lock ---------------------------------------------------------------------
    def hold_lock(self, token: str, timeout: float) -> bool:
        """Take the lock if free, or extend it if ours; True while this beat leads."""
        millis = int(timeout * 1000)
        if self._renew(keys=[self.leader_key], args=[token, millis]):
            return True
        return bool(self._redis.set(self.leader_key, token, nx=True, px=millis))

    def release_lock(self, token: str) -> None:
        self._release(keys=[self.leader_key], args=[token])

    def leader(self) -> str | None:
        return _text(self._redis.get(self.leader_key)) or None

    # -- slots -------------------------------------------------------------------------------
    def last_slots(self, jobs: list[str]) -> dict[str, tuple[str, bool]]:
        """Each job's last fired slot as stored (text, '' if never) and whether it is paused."""
        pipe = self._redis.pipeline(transaction=False)
        for job in jobs:
            pipe.hmget(self.job_key(job), "last_slot", "paused")
        return {
            job: (_text(slot), paused == b"1")
            for job, (slot, paused) in zip(jobs, pipe.execute(), strict=True)
        }

    def claim_slot(self, token: str, job: str, previous: str, slot: str) -> int:
        """1: the slot is ours to fire; 0: another beat fired it; -1: we no longer lead."""
        return int(self._claim(keys=[self.leader_key, self.job_key(job)], args=[token, previous, slot]))

    def forget_last_slot(self, job: str) -> None:
        """The job starts afresh: a beat holding its old last slot fires nothing (the claim's
        compare-and-set fails) and reads the job as never run at its next tick."""
        self._redis.hdel(self.job_key(job), "last_slot")

    # -- pause and resume --------------------------------------------------------------------
    def set_paused(self, job: str, paused: bool) -> None:
        if paused:
            self._redis.hset(self.job_key(job), "paused", "1")
        else:
            self._redis.hdel(self.job_key(job), "paused")

    def is_paused(self, job: str) -> bool:
        return self._redis.hget(self.job_key(job), "paused") == b"1"

    # -- runs --------------------------------------------------------------------------------
    def start_run(self, job: str, run_id: str, timeout: float, exclusive: bool) -> bool:
        """Mark a run as going; with `exclusive`, False if one still is (the guard outlives a
        dead worker by the job's timeout only)."""
        ttl = max(1, math.ceil(timeout) + 5)
        if exclusive and not self._redis.set(self.running_key(job), run_id, nx=True, ex=ttl):
            return False
        if not exclusive:
            self._redis.set(self.running_key(job), run_id, ex=ttl)
        self._redis.hset(self.job_key(job), "last_started", repr(time.time()))
        return True

    def finish_run(
        self, job: str, run_id: str, outcome: str, error: str | None, *, slot: str, started: float
    ) -> None:
        finished = time.time()
        pipe = self._redis.pipeline()
        pipe.hset(self.job_key(job), mapping={"last_outcome": outcome, "last_error": error or ""})
        if outcome == "succeeded":
            pipe.hset(self.job_key(job), "last_success", repr(finished))
        pipe.hincrby(self.runs_key, f"{job}|{outcome}", 1)
        run = {"slot": slot, "run": run_id, "started": started, "finished": finished, "outcome": outcome}
        pipe.lpush(self.history_key(job), json.dumps(run))
        pipe.ltrim(self.history_key(job), 0, HISTORY_LENGTH - 1)
        pipe.execute()
        self._release(keys=[self.running_key(job)], args=[run_id])

    def count(self, job: str, outcome: str, runs: int = 1) -> None:
        self._redis.hincrby(self.runs_key, f"{job}|{outcome}", runs)

    def history(self, job: str) -> list[dict[str, Any]]:
        """The job's last runs, newest first."""
        return [json.loads(item) for item in self._redis.lrange(self.history_key(job), 0, -1)]

    def runs(self) -> dict[tuple[str, str], int]:
        counts = self._redis.hgetall(self.runs_key)
        result: dict[tuple[str, str], int] = {}
        for key, value in counts.items():
            job, _, outcome = _text(key).rpartition("|")
            result[job, outcome] = int(value)
        return result

    def status(self, jobs: list[str]) -> list[JobStatus]:
        pipe = self._redis.pipeline(transaction=False)
        for job in jobs:
            pipe.hgetall(self.job_key(job))
            pipe.exists(self.running_key(job))
        replies = pipe.execute()
        result = []
        for index, job in enumerate(jobs):
            fields = {_text(key): value for key, value in replies[2 * index].items()}
            result.append(
                JobStatus(
                    name=job,
                    last_slot=_float(fields.get("last_slot")),
                    paused=fields.get("paused") == b"1",
                    running=bool(replies[2 * index + 1]),
                    last_success=_float(fields.get("last_success")),
                    last_started=_float(fields.get("last_started")),
                    last_outcome=_text(fields.get("last_outcome")) or None,
                    last_error=_text(fields.get("last_error")) or None,
                )
            )
        return result
