"""The console as an operator meets it: a real fleet (worker and web processes) and headless Chromium.

The browser is Debian's `chromium` package driven by Playwright (never `playwright install`);
when it is missing the tests fail under CI=true and skip elsewhere, saying how to install it.
Screenshots of every page go to artifacts/screenshots/ for a person to look at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import FleetUnderTest, fleet_env, fleet_under_test, rabbitmq_queue_type
from tests.support.processes import FleetProcess, free_port, http_ok, wait_until
from workers.console.auth import hash_password

# the integration fixtures, used here as they are
__all__ = ["fleet_env", "fleet_under_test", "rabbitmq_queue_type"]

CHROMIUM = os.environ.get("FLEET_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
OPERATOR = ("alice", "alice-secret")


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """One broker is enough here: the console reads the same stores whichever carries the events."""
    return redis_url


@dataclass
class ConsoleUnderTest:
    url: str
    process: FleetProcess


@pytest.fixture
def console(fleet_under_test: FleetUnderTest) -> ConsoleUnderTest:
    """`fleet web` with an operator login and a trusted proxy header (for scripted requests)."""
    port = free_port()
    env = {
        "FLEET_WEB_PORT": str(port),
        "FLEET_CONSOLE_USERS": f"{OPERATOR[0]}:operator:{hash_password(OPERATOR[1])}",
        "FLEET_CONSOLE_SECRET": "e2e-session-signing-key",
        "FLEET_CONSOLE_TRUSTED_HEADER": "X-Test-User",
    }
    process = fleet_under_test.start("web", env=env)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_ok(f"{url}/healthz") or not process.alive(), timeout=60, what="the web process")
    assert process.alive(), process.log()[-3000:]
    return ConsoleUnderTest(url, process)


@pytest.fixture(scope="module")  # not session: a live Playwright keeps an event loop running for later tests
def chromium() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        message = f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or set FLEET_TEST_CHROMIUM)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1366, "height": 860})  # a laptop screen
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations an operator answers yes
    yield page
    context.close()


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
