"""The console over plain HTTP: nothing changes without a login, a CSRF token and the operator role,
and every change is in the audit log with who did it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from infra.audit import SqlAuditLog
from infra.dead_letters import SqlDeadLetters
from infra.settings import Settings
from tests.integration.conftest import FleetUnderTest
from tests.support.dead_letters import bury_flaky_deposit
from workers.bootstrap import Runtime
from workers.console.auth import hash_password, verify_password
from workers.web import make_web_app

pytestmark = pytest.mark.integration

PASSWORDS = {"alice": "alice-secret", "bob": "bob-secret"}
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def console_settings(redis_url: str, postgres_url: str, **extra: str) -> Settings:
    users = f"alice:operator:{hash_password(PASSWORDS['alice'])},bob:viewer:{hash_password(PASSWORDS['bob'])}"
    values = {
        "broker_url": redis_url,
        "redis_url": redis_url,
        "database_url": postgres_url,
        "queue_prefix": "console-test.",
        "key_prefix": "console-test",
        "console_users": users,
        "console_secret": "a-test-secret-of-some-length",
    }
    return Settings(**(values | extra))  # type: ignore[arg-type]


def console_runtime_of(fut: FleetUnderTest, redis_url: str, postgres_url: str, **extra: str) -> Runtime:
    """The web process's runtime for `fut`: its queues, broker and keys, the console's users, and
    `extra` settings."""
    env = fut.env
    return Runtime(
        console_settings(
            redis_url,
            postgres_url,
            broker_url=env["FLEET_BROKER_URL"],
            queue_prefix=env["FLEET_QUEUE_PREFIX"],
            key_prefix=env["FLEET_KEY_PREFIX"],
            **extra,
        )
    )


@pytest.fixture
def runtime(redis_url: str, postgres_url: str, engine: Engine) -> Iterator[Runtime]:
    runtime = Runtime(console_settings(redis_url, postgres_url))
    yield runtime
    runtime.fleet().close()


def client_for(runtime: Runtime) -> TestClient:
    return TestClient(make_web_app(runtime), base_url="http://console.test", follow_redirects=False)


def csrf_token(client: TestClient, path: str = "/console/login") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    match = CSRF_FIELD.search(page.text)
    assert match, "the page carries a CSRF token"
    return match.group(1)


def log_in(client: TestClient, name: str) -> str:
    """Sign in; returns the session's CSRF token as the pages give it."""
    token = csrf_token(client)
    response = client.post(
        "/console/login",
        data={"username": name, "password": PASSWORDS[name], "csrf": token, "next": "/console/"},
    )
    assert response.status_code == 303, response.text
    return csrf_token(client, "/console/dead-letters")


def bury(engine: Engine, event_id: str, **data: object) -> int:
    return bury_flaky_deposit(engine, event_id, data=data, error_message="downstream unavailable (attempt 4)")


def test_pages_need_a_login_and_a_wrong_password_is_refused_and_audited(
    runtime: Runtime, engine: Engine
) -> None:
    client = client_for(runtime)
    response = client.get("/console/dead-letters")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/console/dead-letters"

    token = csrf_token(client)
    wrong = client.post("/console/login", data={"username": "alice", "password": "guess", "csrf": token})
    assert wrong.status_code == 401
    assert "Wrong name or password" in wrong.text
    assert client.get("/console/").status_code == 303
    assert [(e.actor, e.action) for e in SqlAuditLog(engine).recent()] == [("alice", "login.failed")]


def test_a_change_without_login_or_without_csrf_token_is_refused_and_changes_nothing(
    runtime: Runtime, engine: Engine
) -> None:
    letter = bury(engine, "ev-1")
    client = client_for(runtime)
    anonymous = client.post("/console/dead-letters/archive", data={"ids": str(letter)})
    assert anonymous.status_code == 401

    token = log_in(client, "alice")
    for sent in ({}, {"csrf": "not-the-token"}):
        refused = client.post("/console/dead-letters/archive", data={"ids": str(letter), **sent})
        assert refused.status_code == 403
        assert "CSRF" in refused.text
    login_without_token = client_for(runtime).post(
        "/console/login", data={"username": "alice", "password": PASSWORDS["alice"]}
    )
    assert login_without_token.status_code == 403
    assert SqlDeadLetters(engine).get(letter).status == "dead"

    done = client.post("/console/dead-letters/archive", data={"ids": str(letter), "csrf": token})
    assert done.status_code == 303
    assert SqlDeadLetters(engine).get(letter).status == "archived"  # set aside, not deleted
    last = SqlAuditLog(engine).recent()[0]
    assert (last.actor, last.role, last.action, last.target) == (
        "alice",
        "operator",
        "dead_letters.archive",
        f"letters [{letter}]",
    )
    assert last.detail == "archived 1"


def test_a_viewer_sees_pages_but_changes_nothing(runtime: Runtime, engine: Engine) -> None:
    letter = bury(engine, "ev-2")
    client = client_for(runtime)
    token = log_in(client, "bob")
    page = client.get(f"/console/dead-letters/{letter}")
    assert page.status_code == 200
    assert "ev-2" in page.text
    assert "Replay edited" not in page.text  # no action offered to a viewer
    refused = client.post("/console/dead-letters/replay", data={"ids": str(letter), "csrf": token})
    assert refused.status_code == 403
    assert SqlDeadLetters(engine).get(letter).status == "dead"
    assert client.post("/console/logout", data={"csrf": token}).status_code == 303
    assert client.get("/console/").status_code == 303


def test_editing_a_payload_before_replay_is_recorded_and_may_not_change_the_events_identity(
    runtime: Runtime, engine: Engine
) -> None:
    letter = bury(engine, "ev-3", fail_times=99)
    client = client_for(runtime)
    token = log_in(client, "alice")
    envelope = json.loads(SqlDeadLetters(engine).get(letter).envelope)

    renamed = client.post(
        f"/console/dead-letters/{letter}/replay-edited",
        data={"csrf": token, "envelope": json.dumps(envelope | {"id": "another"})},
    )
    assert renamed.status_code == 400
    assert "id may not change" in renamed.text
    broken = client.post(
        f"/console/dead-letters/{letter}/replay-edited", data={"csrf": token, "envelope": "{"}
    )
    assert broken.status_code == 400
    assert SqlDeadLetters(engine).get(letter).status == "dead"

    edited = envelope | {"data": envelope["data"] | {"fail_times": 0}}
    done = client.post(
        f"/console/dead-letters/{letter}/replay-edited", data={"csrf": token, "envelope": json.dumps(edited)}
    )
    assert done.status_code == 303
    assert SqlDeadLetters(engine).get(letter).status == "replayed"
    entry = SqlAuditLog(engine).recent()[0]
    assert (entry.actor, entry.action, entry.target) == (
        "alice",
        "dead_letters.replay_edited",
        f"letter {letter}",
    )
    assert '-    "fail_times": 99' in entry.detail
    assert '+    "fail_times": 0' in entry.detail


def test_a_trusted_proxy_header_signs_the_user_in_with_their_configured_role(
    redis_url: str, postgres_url: str, engine: Engine
) -> None:
    runtime = Runtime(console_settings(redis_url, postgres_url, console_trusted_header="X-Forwarded-User"))
    try:
        client = client_for(runtime)
        assert client.get("/console/audit").status_code == 303
        page = client.get("/console/audit", headers={"X-Forwarded-User": "carol"})
        assert page.status_code == 200
        assert "carol <em>viewer</em>" in page.text
    finally:
        runtime.fleet().close()


def test_login_goes_back_only_to_a_console_page(runtime: Runtime) -> None:
    client = client_for(runtime)
    token = csrf_token(client)
    response = client.post(
        "/console/login",
        data={"username": "alice", "password": PASSWORDS["alice"], "csrf": token, "next": "//evil.example/x"},
    )
    assert response.headers["location"] == "/console/"


def test_password_hashes_verify_only_their_password() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$")
    assert ":" not in stored and "," not in stored  # safe inside FLEET_CONSOLE_USERS
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsE", stored)
    assert not verify_password("x", "not-a-hash")


def test_every_page_renders_for_a_viewer(runtime: Runtime, engine: Engine) -> None:
    letter = bury(engine, "ev-4")
    stream, streams = runtime.settings.redis_stream, runtime.fleet().transports.stream_redis
    streams.delete(stream)
    streams.xadd(stream, {"event": "{}"})
    streams.xgroup_create(stream, "console-group", id="0")
    client = client_for(runtime)
    log_in(client, "bob")
    for path, expected in (
        ("/console/", "Workers online"),
        ("/console/?partial=1", "Handled / min"),
        ("/console/workers", "No worker answered"),
        ("/console/queues", "console-test.fleet.demo"),
        ("/console/queues", "console-group"),
        ("/console/events?q=ev-4", "No events match"),
        ("/console/events/timeline?id=ev-4", "Nothing recorded"),
        ("/console/dead-letters", "f00dfeedf00dfeed"),
        ("/console/dead-letters/groups/f00dfeedf00dfeed", "ev-4"),
        (f"/console/dead-letters/{letter}", "Traceback"),
        ("/console/dead-letters?status=archived", "No archived letters"),
        ("/console/schedules", "fleet.outbox.relay"),
        ("/console/graph", "No subscriptions"),
        ("/console/audit", "login"),
        ("/console/static/console.css", "--accent"),
    ):
        page = client.get(path)
        assert page.status_code == 200, (path, page.text[:500])
        assert expected in page.text, path


def test_an_operator_pauses_resumes_and_runs_a_scheduled_job(runtime: Runtime, engine: Engine) -> None:
    from infra.schedules.state import ScheduleState

    state = ScheduleState(runtime.fleet().redis, runtime.settings.key_prefix)
    client = client_for(runtime)
    token = log_in(client, "alice")
    for action, paused in (("pause", True), ("resume", False)):
        response = client.post(
            "/console/schedules/action", data={"csrf": token, "name": "relay-outbox", "action": action}
        )
        assert response.status_code == 303
        assert state.is_paused("relay-outbox") is paused
    assert (
        client.post(
            "/console/schedules/action", data={"csrf": token, "name": "relay-outbox", "action": "run"}
        ).status_code
        == 303
    )
    unknown = client.post("/console/schedules/action", data={"csrf": token, "name": "nope", "action": "run"})
    assert unknown.status_code == 404
    actions = [(e.actor, e.action, e.target) for e in SqlAuditLog(engine).recent()][:3]
    assert actions == [
        ("alice", "schedules.run", "relay-outbox"),
        ("alice", "schedules.resume", "relay-outbox"),
        ("alice", "schedules.pause", "relay-outbox"),
    ]
    page = client.get("/console/schedules")
    assert 'data-name="relay-outbox"' in page.text


# Checking that a schedule's task exists finalizes the Celery app, which warns about the route
# tasks (tasks/handle.py: their `queue` attribute, and two routes sharing one task name); those
# warnings are not this test's subject.
@pytest.mark.filterwarnings("ignore::celery.exceptions.CDeprecationWarning")
@pytest.mark.filterwarnings("ignore::celery.exceptions.DuplicateTaskNameWarning")
def test_an_operator_adds_changes_and_removes_a_schedule_and_every_change_is_audited(
    runtime: Runtime, engine: Engine
) -> None:
    from workers.schedules import schedule_store

    viewer = client_for(runtime)
    viewer_token = log_in(viewer, "bob")
    nightly = {"publish": "demo.deposit_recorded", "cron": "0 3 * * * Europe/Amsterdam", "data": {}}
    add = {"name": "nightly", "change": "add", "entry": json.dumps(nightly)}
    assert viewer.post("/console/schedules/change", data={"csrf": viewer_token, **add}).status_code == 403
    client = client_for(runtime)
    token = log_in(client, "alice")
    assert client.post("/console/schedules/change", data=add).status_code == 403  # no CSRF token
    assert schedule_store(runtime).overrides() == {}

    assert client.post("/console/schedules/change", data={"csrf": token, **add}).status_code == 303
    page = client.get("/console/schedules").text
    assert 'data-name="nightly"' in page
    assert "cron 0 3 * * * Europe/Amsterdam" in page
    typo = {
        "csrf": token,
        "name": "nightly",
        "change": "set",
        "entry": '{"publish": "demo.nope", "every": 5}',
    }
    refused = client.post("/console/schedules/change", data=typo)
    assert refused.status_code == 400
    assert "no event type 'demo.nope'" in refused.text
    hourly = {"publish": "demo.deposit_recorded", "every": 3600}
    changed = {"csrf": token, "name": "nightly", "change": "set", "entry": json.dumps(hourly)}
    assert client.post("/console/schedules/change", data=changed).status_code == 303
    assert "every 3600 s" in client.get("/console/schedules").text
    built_in = {"csrf": token, "name": "relay-outbox", "change": "remove"}
    assert client.post("/console/schedules/change", data=built_in).status_code == 400
    removed = {"csrf": token, "name": "nightly", "change": "remove"}
    assert client.post("/console/schedules/change", data=removed).status_code == 303
    assert 'data-name="nightly"' not in client.get("/console/schedules").text
    assert client.post("/console/schedules/change", data=removed).status_code == 404
    assert schedule_store(runtime).overrides() == {"nightly": None}

    entries = [(e.actor, e.role, e.action, e.target, e.detail) for e in SqlAuditLog(engine).recent()][:3]
    assert entries == [
        ("alice", "operator", "schedules.remove", "nightly", "removed"),
        ("alice", "operator", "schedules.set", "nightly", json.dumps(hourly, sort_keys=True)),
        ("alice", "operator", "schedules.add", "nightly", json.dumps(nightly, sort_keys=True)),
    ]


def test_with_the_broker_down_the_console_says_so_and_the_dead_letters_stay_at_hand(
    redis_url: str, postgres_url: str, engine: Engine
) -> None:
    runtime = Runtime(console_settings(redis_url, postgres_url, broker_url="redis://127.0.0.1:1/0"))
    try:
        bury(engine, "ev-5")
        client = client_for(runtime)
        log_in(client, "bob")
        overview = client.get("/console/")
        assert overview.status_code == 200
        assert "workers: the broker is unreachable" in overview.text
        assert "queue depths: the broker is unreachable" in overview.text
        letters = client.get("/console/dead-letters/groups/f00dfeedf00dfeed")
        assert letters.status_code == 200
        assert "ev-5" in letters.text
    finally:
        runtime.fleet().close()


def test_a_session_outlives_the_web_process_that_signed_it(runtime: Runtime) -> None:
    """Sessions are signed cookies (FLEET_CONSOLE_SECRET), not server memory: a restarted or
    second web process honours them."""
    first = client_for(runtime)
    log_in(first, "alice")
    restarted = client_for(runtime)  # a new app, as after a restart
    restarted.cookies.update(first.cookies)
    page = restarted.get("/console/audit")
    assert page.status_code == 200
    assert "alice <em>operator</em>" in page.text
