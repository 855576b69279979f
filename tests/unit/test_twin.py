"""The test twin runs the demo domain's events through the real dispatcher on in-memory stores:
exactly once, retried on a virtual clock, dead-lettered, replayed, follow-ups run."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from engine.dispatch import Delivery
from fleet.testing import FleetTwin
from handlers.envelope import Event, new_event
from infra.builtin_domains import DEMO
from infra.demo import SqlDepositBook


@dataclass
class Receipts:
    sent: list[str] = field(default_factory=list)

    def send(self, *, to: str, text: str, key: str) -> None:
        self.sent.append(key)


class AllUp:
    def is_up(self, name: str) -> bool:
        return True


@pytest.fixture
def receipts() -> Receipts:
    return Receipts()


@pytest.fixture
def twin(receipts: Receipts) -> FleetTwin:
    return FleetTwin(
        domains=[DEMO],
        services={"receipts": receipts, "downstream": AllUp()},
        insert_ports={"deposits": SqlDepositBook},  # it only buffers rows: the real one serves
    )


def deposit(event_id: str, type: str = "demo.deposit_recorded", **data: object) -> Event:
    return new_event(type, {"account": "a-1", "amount": 5, **data}, source="shop", id=event_id)


def test_an_event_delivered_twice_takes_effect_once_and_its_follow_up_runs(
    twin: FleetTwin, receipts: Receipts
) -> None:
    twin.publish(deposit("d-1", email="a@example.com"), deposit("d-1", email="a@example.com"))
    outcome = twin.run_until_idle()
    assert [row["event_id"] for row in twin.rows("demo_deposits")] == ["d-1"]
    assert (outcome.handled, outcome.duplicates) == (2, 1)  # the deposit and its receipt; one repeat
    assert receipts.sent == ["d-1/receipt"]
    assert twin.is_done("fleet.demo.record_deposit", deposit("d-1"))


def test_a_batch_with_a_failing_event_keeps_its_neighbours_and_retries_on_the_virtual_clock(
    twin: FleetTwin,
) -> None:
    started = twin.clock.now()
    twin.deliver(
        [deposit("f-1", "demo.flaky_requested", fail_times=2), deposit("f-2", "demo.flaky_requested")]
    )
    outcome = twin.run_until_idle()
    assert sorted(row["event_id"] for row in twin.rows("demo_deposits")) == ["f-1", "f-2"]
    assert outcome.retried == 2 and twin.dead_letters() == []
    assert twin.clock.now() > started, "the retries waited their backoff, in virtual time"


def test_what_fails_every_attempt_is_dead_lettered_and_a_replay_runs_it_again(twin: FleetTwin) -> None:
    twin.publish(deposit("f-9", "demo.flaky_requested", fail_times=4))
    twin.run_until_idle()
    [letter] = twin.dead_letters()
    assert (letter.event_id, letter.attempts, letter.error_type) == ("f-9", 4, "RetryableError")
    assert twin.rows("demo_deposits") == []
    assert twin.replay().replayed == [letter.id]
    twin.run_until_idle()  # attempts start again at 1: it fails on 1..4 again
    assert twin.dead_letters()[0].attempts == 4


def test_bad_input_goes_to_the_dead_letter_queue_at_once(twin: FleetTwin) -> None:
    twin.publish(new_event("demo.deposit_recorded", {"account": "a-1"}, source="shop", id="bad"))
    outcome = twin.run_until_idle()
    assert outcome.dead == 1 and outcome.retried == 0
    assert twin.dead_letters()[0].error_type == "InvalidEvent"


def test_a_port_nobody_provides_fails_the_twin_as_it_is_built() -> None:
    with pytest.raises(LookupError, match="'receipts'"):
        FleetTwin(domains=[DEMO], services={"downstream": AllUp()}, insert_ports={"deposits": SqlDepositBook})


def test_retries_later_than_the_broker_holds_wait_in_the_delayed_store(receipts: Receipts) -> None:
    twin = FleetTwin(
        domains=[DEMO],
        services={"receipts": receipts, "downstream": AllUp()},
        insert_ports={"deposits": SqlDepositBook},
        eta_max=0.0,  # every retry goes through the delayed store
    )
    flaky = deposit("f-3", "demo.flaky_requested", fail_times=1)
    twin.dispatcher.handle([flaky.to_json().decode()], first())  # the first attempt fails
    assert len(twin.delayed.waiting) == 1 and twin.queues.waiting == []
    twin.run_until_idle()
    assert twin.delayed.waiting == []
    assert [row["event_id"] for row in twin.rows("demo_deposits")] == ["f-3"]


def first() -> Delivery:
    return Delivery("m-1", "fleet.demo.record_flaky_deposit", redelivered=False)
