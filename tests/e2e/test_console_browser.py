"""An operator in a browser: signs in, sees the worker, finds failures grouped by cause, fixes the
cause, replays the group (and one letter with an edited payload), and the events take effect."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import OPERATOR, ConsoleUnderTest, screenshot
from tests.integration.conftest import FleetUnderTest
from tests.integration.helpers import flaky
from tests.support.processes import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

GROUP_ROW = "tr.group"


def sign_in(page: Any, console: ConsoleUnderTest) -> None:
    page.goto(f"{console.url}/console/dead-letters")
    assert "/console/login" in page.url
    screenshot(page, "01-login")
    page.fill("input[name=username]", OPERATOR[0])
    page.fill("input[name=password]", OPERATOR[1])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/dead-letters$"))


def test_an_operator_replays_a_group_of_dead_letters_after_fixing_the_cause(
    fleet_under_test: FleetUnderTest, console: ConsoleUnderTest, page: Any
) -> None:
    fut = fleet_under_test
    worker = fut.start_worker()
    bank_down = fut.fleet.domains.port("downstream").key("bank")
    fut.redis.set(bank_down, "1")
    sign_in(page, console)

    page.goto(f"{console.url}/console/")
    page.wait_for_selector("#workers-online li")  # answered a ping: online
    assert re.search(r"w\d+-\w+@", page.inner_text("#workers-online"))
    screenshot(page, "02-overview")
    page.goto(f"{console.url}/console/workers")
    assert page.locator("tr.worker").count() == 1
    assert page.locator("tr.worker td.processes").inner_text() == "2"
    screenshot(page, "03-workers")
    page.locator("tr.worker button", has_text="+1 process").click()  # confirmed in the dialog
    page.wait_for_selector(".flash")
    wait_until(
        lambda: page.reload() and page.locator("tr.worker td.processes").inner_text() == "3",
        timeout=30,
        what="the pool grown by one process",
    )
    page.locator("tr.worker button", has_text="Restart pool").click()  # new children as work comes
    assert "reload started" in page.locator(".flash").inner_text()

    stuck = [flaky(f"bank-{n}", needs="bank") for n in (0, 1, 2, "junk")]
    doomed = flaky("doomed-1", fail_times=99)
    fut.fleet.publisher.publish([*stuck, doomed])
    wait_until(lambda: len(fut.letters()) == 5, timeout=120, what="five dead letters")

    page.goto(f"{console.url}/console/dead-letters")
    groups = page.locator(GROUP_ROW)
    assert groups.count() == 1  # one cause: RetryableError raised in record_flaky_deposit
    assert groups.first.locator("td.count").inner_text() == "5"
    assert "RetryableError" in groups.first.inner_text()
    screenshot(page, "04-dead-letter-groups")

    groups.first.locator("a").first.click()
    page.wait_for_selector("tr.letter")
    assert page.locator("tr.letter").count() == 5
    screenshot(page, "05-dead-letter-group")

    page.locator("tr.letter", has_text="doomed-1").locator("a").first.click()
    page.wait_for_selector("textarea[name=envelope]")
    assert "downstream unavailable (attempt 4)" in page.inner_text("dl.facts")
    screenshot(page, "06-dead-letter")
    payload = page.input_value("textarea[name=envelope]")
    assert '"fail_times": 99' in payload
    page.fill("textarea[name=envelope]", payload.replace('"fail_times": 99', '"fail_times": 0'))
    page.click("text=Replay edited")
    page.wait_for_selector(".flash")
    assert "edited payload" in page.inner_text(".flash")
    wait_until(lambda: fut.deposits().get("doomed-1") == 1, timeout=60, what="the edited event handled")

    page.goto(f"{console.url}/console/dead-letters")
    page.locator(GROUP_ROW).first.locator("a").first.click()
    page.locator("tr.letter", has_text="bank-junk").locator("input[name=ids]").check()
    page.click("text=Archive selected")
    page.wait_for_selector(".flash")
    assert "Archived 1 letter(s)" in page.inner_text(".flash")
    assert page.locator("tr.letter").count() == 3

    fut.redis.delete(bank_down)  # the cause, fixed
    page.goto(f"{console.url}/console/dead-letters")
    assert page.locator(GROUP_ROW).first.locator("td.count").inner_text() == "3"
    page.locator(GROUP_ROW).first.locator("button", has_text="Replay all").click()
    page.wait_for_selector(".flash")
    assert "Replayed 3 letter(s)" in page.inner_text(".flash")
    assert page.locator("#no-groups").is_visible()
    screenshot(page, "07-dead-letters-empty")

    wait_until(
        lambda: fut.deposits() == {"bank-0": 1, "bank-1": 1, "bank-2": 1, "doomed-1": 1},
        timeout=90,
        what="every replayed event handled once",
    )
    assert {letter.event_id: letter.status for letter in fut.letters()} == {
        "bank-0": "replayed",
        "bank-1": "replayed",
        "bank-2": "replayed",
        "bank-junk": "archived",  # set aside, kept, never replayed
        "doomed-1": "replayed",
    }
    page.goto(f"{console.url}/console/dead-letters?status=archived")
    assert page.locator(GROUP_ROW).first.locator("td.count").inner_text() == "1"

    def events_page_shows_it_handled() -> bool:  # workers write history in the background
        page.goto(f"{console.url}/console/events?q=bank-0")
        return bool(page.locator("span.outcome.handled").count() >= 1)

    wait_until(events_page_shows_it_handled, timeout=15, what="the handled entry on the events page")
    screenshot(page, "08-events")
    page.goto(f"{console.url}/console/events/timeline?id=bank-0")
    outcomes = page.locator("ol.timeline li span.outcome").all_inner_texts()
    assert outcomes[-1] == "handled"
    assert "dead_lettered" in outcomes
    screenshot(page, "09-timeline")

    page.goto(f"{console.url}/console/audit")
    audit = page.inner_text("#audit")
    assert "dead_letters.replay_edited" in audit
    assert "dead_letters.replay" in audit
    assert "dead_letters.archive" in audit
    assert "workers.grow" in audit
    assert "workers.restart" in audit
    assert "alice" in audit
    screenshot(page, "10-audit")
    for name in ("queues", "schedules", "graph"):
        page.goto(f"{console.url}/console/{name}")
        assert page.locator("h1").count() == 1
        screenshot(page, f"11-{name}")

    def overview_counts_the_replays_handled() -> bool:  # each pool process flushes on its own clock
        page.goto(f"{console.url}/console/")
        handled_note = page.locator(".tile .note").first.inner_text()  # "N in the last 15 min"
        return int(handled_note.split()[0]) >= 4  # the four events handled after their replay

    wait_until(overview_counts_the_replays_handled, timeout=15, what="the overview's handled count")
    screenshot(page, "12-overview-after")
    assert worker.alive()
