"""Changes made with `fleet` land in the console's audit log, under the OS user who ran the command."""

from __future__ import annotations

import getpass

import pytest

from handlers.envelope import new_event
from infra.audit import SqlAuditLog
from infra.dead_letters import DeadLetter, Filter, SqlDeadLetters
from tests.integration.conftest import FleetUnderTest

pytestmark = pytest.mark.integration


@pytest.fixture
def broker_url(redis_url: str) -> str:
    return redis_url


def _bury(fut: FleetUnderTest, event_id: str) -> int:
    event = new_event("demo.flaky_requested", {"account": "a-1", "amount": 1}, source="tests", id=event_id)
    store = SqlDeadLetters(fut.engine)
    store.add(
        DeadLetter(
            handler="fleet.demo.record_flaky_deposit",
            event_type=event.type,
            source=event.source,
            event_id=event.id,
            queue="fleet.demo",
            envelope=event.to_json().decode(),
            attempts=4,
            error_type="RetryableError",
            error_message="downstream unavailable",
            traceback="Traceback ...",
            fingerprint=f"fp-{event_id}"[:16],
        )
    )
    return int(store.find(Filter(), limit=1)[0].id)


def test_dlq_replay_and_purge_and_schedule_changes_are_audited_with_the_os_user(
    fleet_under_test: FleetUnderTest,
) -> None:
    fut = fleet_under_test
    replayed, purged = _bury(fut, "ev-replay"), _bury(fut, "ev-purge")
    _bury(fut, "ev-by-filter")
    for args in (
        ("dlq", "replay", str(replayed)),
        ("dlq", "purge", str(purged), "--yes"),
        ("dlq", "purge", "--fingerprint", "fp-ev-by-filter", "--yes"),
        ("schedules", "pause", "relay-outbox"),
        ("schedules", "resume", "relay-outbox"),
        ("schedules", "run", "relay-outbox"),
    ):
        result = fut.cli(*args)
        assert result.returncode == 0, (args, result.stderr)

    entries = list(reversed(SqlAuditLog(fut.engine).recent()))
    assert {(entry.actor, entry.role) for entry in entries} == {(getpass.getuser(), "cli")}
    assert [(entry.action, entry.target) for entry in entries] == [
        ("dead_letters.replay", f"letters [{replayed}]"),
        ("dead_letters.purge", f"letters [{purged}]"),
        ("dead_letters.purge", 'letters where {"fingerprint": "fp-ev-by-filter", "status": "dead"}'),
        ("schedules.pause", "relay-outbox"),
        ("schedules.resume", "relay-outbox"),
        ("schedules.run", "relay-outbox"),
    ]
    assert entries[0].detail == f"replayed [{replayed}]"
    assert [entry.detail for entry in entries[1:3]] == ["purged 1", "purged 1"]
    assert entries[5].detail.startswith("sent (manual-")
