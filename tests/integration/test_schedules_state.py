"""Schedule state on a real Redis: the leader lock fences a deposed leader, and the metrics a
scrape reads from it."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import Engine

from infra.audit import SqlAuditLog
from infra.schedules.state import ScheduleState
from infra.schedules.store import SqlSchedules
from infra.settings import Settings
from workers.bootstrap import Runtime
from workers.schedules import schedule_state, schedule_store
from workers.status import schedule_collector

pytestmark = pytest.mark.integration


@pytest.fixture
def state(redis_url: str) -> ScheduleState:
    return ScheduleState(redis.Redis.from_url(redis_url), f"t{uuid.uuid4().hex[:8]}")


def test_only_the_lock_holder_claims_a_slot_and_only_once(state: ScheduleState) -> None:
    assert state.hold_lock("a", timeout=5)
    assert not state.hold_lock("b", timeout=5)
    assert state.claim_slot("b", "job", "", "10.000") == -1  # not the leader: fires nothing
    assert state.claim_slot("a", "job", "", "10.000") == 1
    assert state.claim_slot("a", "job", "", "10.000") == 0  # already fired from that state
    assert state.last_slots(["job"]) == {"job": ("10.000", False)}


def test_a_leader_whose_lock_expired_cannot_fire_after_the_standby_took_over(state: ScheduleState) -> None:
    assert state.hold_lock("a", timeout=1)
    time.sleep(1.2)  # "a" stalls (a long GC pause, a frozen VM) past its lock
    assert state.hold_lock("b", timeout=5)
    assert state.claim_slot("b", "job", "", "20.000") == 1
    assert state.claim_slot("a", "job", "", "20.000") == -1
    assert not state.hold_lock("a", timeout=5)
    state.release_lock("a")  # not its lock: no effect
    assert state.leader() == "b"
    state.release_lock("b")
    assert state.leader() is None


def test_the_overlap_guard_admits_one_run_at_a_time(state: ScheduleState) -> None:
    assert state.start_run("job", "run-1", timeout=30, exclusive=True)
    assert not state.start_run("job", "run-2", timeout=30, exclusive=True)
    state.finish_run("job", "run-1", "succeeded", None, slot="1.000", started=time.time())
    assert state.start_run("job", "run-3", timeout=30, exclusive=True)


def test_metrics_come_from_redis_at_scrape_time(redis_url: str, postgres_url: str, engine: Engine) -> None:
    configured = {"relay": {"publish": "demo.deposit_recorded", "every": 5}}
    configured["nightly"] = {"publish": "demo.deposit_recorded", "cron": "0 3 * * *"}
    settings = Settings(
        broker_url=redis_url,
        database_url=postgres_url,
        key_prefix=f"t{uuid.uuid4().hex[:8]}",
        schedules=configured,
    )
    runtime = Runtime(settings)
    state = schedule_state(runtime)
    state.start_run("relay", "r1", timeout=10, exclusive=True)
    state.finish_run("relay", "r1", "succeeded", None, slot="5.000", started=time.time())
    state.count("relay", "skipped_overlap", 2)
    state.set_paused("nightly", True)
    registry = CollectorRegistry()
    registry.register(schedule_collector(runtime))
    text = generate_latest(registry).decode()
    assert 'fleet_schedule_runs_total{job="relay",outcome="succeeded"} 1.0' in text
    assert 'fleet_schedule_runs_total{job="relay",outcome="skipped_overlap"} 2.0' in text
    assert 'fleet_schedule_last_success_timestamp_seconds{job="relay"}' in text
    assert 'fleet_schedule_last_success_timestamp_seconds{job="nightly"}' not in text  # never succeeded
    assert 'fleet_schedule_interval_seconds{job="nightly"} 86400.0' in text
    assert 'fleet_schedule_paused{job="nightly"} 1.0' in text
    assert 'fleet_schedule_paused{job="relay"} 0.0' in text
    assert 'fleet_schedule_interval_seconds{job="relay-outbox"} 5.0' in text  # the code's own jobs too
    store = schedule_store(runtime)
    store.put("hourly", {"publish": "demo.deposit_recorded", "every": 3600}, actor="t", role="cli")
    store.put("nightly", None, actor="t", role="cli")
    text = generate_latest(registry).decode()  # the same collector: the jobs are read at each scrape
    assert 'fleet_schedule_interval_seconds{job="hourly"} 3600.0' in text
    assert 'job="nightly"' not in text
    runtime.fleet().close()


def test_every_change_to_the_runtime_schedules_moves_the_counter_beat_watches(
    redis_url: str, postgres_url: str, engine: Engine
) -> None:
    client = redis.Redis.from_url(redis_url)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    store, state = SqlSchedules(engine, client, prefix), ScheduleState(client, prefix)
    assert state.hold_lock("beat", timeout=5)
    assert state.claim_slot("beat", "pulse", "", "10.000") == 1
    versions = [store.version()]
    store.put("pulse", {"publish": "demo.deposit_recorded", "every": 5}, actor="ops", role="cli")
    versions.append(store.version())
    store.put("pulse", None, actor="ops", role="cli")
    versions.append(store.version())
    assert versions == [0, 1, 2]
    assert store.overrides() == {"pulse": None}
    audited = [(e.actor, e.role, e.action, e.target) for e in reversed(SqlAuditLog(engine).recent())]
    assert audited == [("ops", "cli", "schedules.set", "pulse")] * 2  # each in the change's transaction
    # The job starts afresh: the old slot is forgotten, and a beat still holding it fires nothing.
    assert state.last_slots(["pulse"]) == {"pulse": ("", False)}
    assert state.claim_slot("beat", "pulse", "10.000", "15.000") == 0
