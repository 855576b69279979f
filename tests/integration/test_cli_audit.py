"""Changes made with `fleet` land in the console's audit log, under the OS user who ran the command."""

from __future__ import annotations

import getpass

import pytest

from infra.audit import SqlAuditLog
from tests.integration.conftest import FleetUnderTest
from tests.support.dead_letters import bury_flaky_deposit

pytestmark = pytest.mark.integration


@pytest.fixture
def broker_url(redis_url: str) -> str:
    return redis_url


def _bury(fut: FleetUnderTest, event_id: str) -> int:
    return bury_flaky_deposit(fut.engine, event_id, fingerprint=f"fp-{event_id}"[:16])


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
