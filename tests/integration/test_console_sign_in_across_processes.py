"""Signing in to the console as deployed: two `fleet web` processes reading the same Secret (files
in FLEET_SECRETS_DIR, as Kubernetes mounts it) honour each other's sessions and CSRF tokens; and
`fleet up` on a laptop prints a sign-in link that works once."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.integration.conftest import FleetUnderTest
from tests.integration.test_console_access import CSRF_FIELD, PASSWORDS
from tests.support.processes import free_port, http_ok, wait_until
from workers.console.auth import hash_password

LINK = re.compile(r"http://127\.0\.0\.1:\d+/console/sign-in\?token=\S+")


def start_web(fut: FleetUnderTest, env: dict[str, str]) -> str:
    port = free_port()
    fut.start("web", env={**env, "FLEET_WEB_PORT": str(port)})
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_ok(f"{base}/readyz"), timeout=60, what=f"the web process on {port}")
    return base


def csrf_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    match = CSRF_FIELD.search(response.text)
    assert match, "the page carries a CSRF token"
    return match.group(1)


def test_two_web_processes_with_one_secret_honour_each_others_sessions_and_csrf_tokens(
    fleet_under_test: FleetUnderTest, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "FLEET_CONSOLE_SECRET").write_text("a-shared-secret-of-some-length\n")
    (secrets / "FLEET_CONSOLE_USERS").write_text(f"alice:operator:{hash_password(PASSWORDS['alice'])}\n")
    env = {"FLEET_SECRETS_DIR": str(secrets)}
    one, other = start_web(fleet_under_test, env), start_web(fleet_under_test, env)

    with httpx.Client(timeout=10) as first:
        token = csrf_of(first.get(f"{one}/console/login"))
        signed_in = first.post(
            f"{one}/console/login",
            data={"username": "alice", "password": PASSWORDS["alice"], "csrf": token, "next": "/console/"},
        )
        assert signed_in.status_code == 303, signed_in.text
        cookie = first.cookies["fleet_console"]
        csrf = csrf_of(first.get(f"{one}/console/dead-letters"))

    with httpx.Client(timeout=10, cookies={"fleet_console": cookie}) as second:
        page = second.get(f"{other}/console/dead-letters")
        assert page.status_code == 200, "the other process knows the session"
        assert "alice" in page.text
        logged_out = second.post(f"{other}/console/logout", data={"csrf": csrf})
        assert logged_out.status_code == 303, "and accepts the CSRF token the first one gave"


def test_fleet_up_prints_a_sign_in_link_that_works_once(fleet_under_test: FleetUnderTest) -> None:
    fut = fleet_under_test
    port = free_port()
    fut.env["FLEET_WEB_PORT"] = str(port)
    up = fut.start("up")
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/readyz"), timeout=90, what="the web process ready")
    wait_until(lambda: LINK.search(up.log()) is not None, timeout=10, what="the sign-in link")
    match = LINK.search(up.log())
    assert match
    link = match.group(0)

    with httpx.Client(timeout=10) as browser:
        assert browser.get(f"http://127.0.0.1:{port}/console/").status_code == 303, "auth stays on"
        opened = browser.get(link)
        assert opened.status_code == 303, opened.text
        overview = browser.get(f"http://127.0.0.1:{port}/console/")
        assert overview.status_code == 200
        assert "local" in overview.text
    with httpx.Client(timeout=10) as another:
        assert another.get(link).status_code == 403, "the link works once"
        assert another.get(f"http://127.0.0.1:{port}/console/").status_code == 303
