"""The producer API as an application uses it (`import fleet`), with real workers consuming, on
both brokers: every form is handled, bad events and types are refused before anything is sent,
and concurrent single publishes from threads, duplicates among them, take effect exactly once."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import fleet
from handlers.demo.data import DepositRecorded
from tests.integration.conftest import FleetUnderTest
from tests.support.processes import wait_until
from tests.support.worker_metrics import events_per_transaction, start_with_metrics


@pytest.fixture
def api(fleet_under_test: FleetUnderTest, monkeypatch: pytest.MonkeyPatch) -> Iterator[FleetUnderTest]:
    """`fleet`'s publishers configured, as an application's are, from this fleet's environment."""
    for name, value in fleet_under_test.env.items():
        monkeypatch.setenv(name, value)
    fleet.close()
    yield fleet_under_test
    fleet.close()


def deposit_data(n: int) -> dict[str, object]:
    return {"account": f"acc-{n % 7}", "amount": 1}


def test_publish_publish_events_and_publish_async_are_each_handled(api: FleetUnderTest) -> None:
    api.start_worker()
    assert fleet.publish("demo.deposit_recorded", deposit_data(0), source="app", id="one") == "one"
    batch = [
        fleet.new_event("demo.deposit_recorded", deposit_data(n), source="app", id=f"b-{n}") for n in range(3)
    ]
    assert fleet.publish_events(batch) == ["b-0", "b-1", "b-2"]

    async def from_asyncio() -> list[str]:
        calls = [
            fleet.publish_async("demo.deposit_recorded", deposit_data(n), source="app", id=f"a-{n}")
            for n in range(20)
        ]
        return await asyncio.gather(*calls)

    assert asyncio.run(from_asyncio()) == [f"a-{n}" for n in range(20)]
    expected = {"one", "b-0", "b-1", "b-2", *(f"a-{n}" for n in range(20))}
    wait_until(lambda: set(api.deposits()) == expected, timeout=60, what="every published deposit")
    assert max(api.deposits().values()) == 1


def test_bad_events_and_unknown_types_are_refused_with_fleet_errors(api: FleetUnderTest) -> None:
    with pytest.raises(fleet.InvalidEvent) as invalid:
        fleet.publish("demo.deposit_recorded", deposit_data(0), source="")
    assert invalid.value.field == "source"
    with pytest.raises(fleet.UnknownEventType, match=r"demo\.unheard_of"):
        fleet.publish("demo.unheard_of", {}, source="app")
    with pytest.raises(fleet.InvalidEvent) as invalid_async:
        asyncio.run(fleet.publish_async("demo.deposit_recorded", deposit_data(0), source=""))
    assert invalid_async.value.field == "source"
    good = fleet.new_event("demo.deposit_recorded", deposit_data(0), source="app", id="never-sent")
    with pytest.raises(fleet.UnknownEventType):  # one unknown type: nothing of the call is sent
        fleet.publish_events([good, fleet.new_event("demo.unheard_of", {}, source="app")])
    api.start_worker()
    fleet.publish("demo.deposit_recorded", deposit_data(0), source="app", id="after")
    wait_until(lambda: "after" in api.deposits(), timeout=60, what="the good event after the bad")
    assert "never-sent" not in api.deposits()


def test_single_publishes_from_8_threads_with_a_tenth_twice_take_effect_exactly_once(
    api: FleetUnderTest, tmp_path: Path
) -> None:
    total = 10_000 if api.runtime.settings.broker_is_redis else 3_000  # a confirm per message on RabbitMQ
    ids = [f"t-{n}" for n in range(total)]
    rng = random.Random(11)
    stream = ids + rng.sample(ids, total // 10)
    rng.shuffle(stream)
    failures: list[BaseException] = []

    def publish_share(share: list[str]) -> None:
        try:
            for event_id in share:
                fleet.publish(
                    "demo.deposit_recorded", {"account": "acc-1", "amount": 1}, source="app", id=event_id
                )
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=publish_share, args=(stream[n::8],)) for n in range(8)]
    for thread in threads:
        thread.start()
    port = start_with_metrics(api, tmp_path, concurrency=2)
    for thread in threads:
        thread.join()
    assert failures == []
    wait_until(lambda: len(api.deposits()) == total, timeout=120, what=f"{total} deposits")
    counts = api.deposits()
    assert set(counts) == set(ids)
    assert max(counts.values()) == 1
    assert api.letters() == []
    # Every event went through a transaction, and the worker took many at once: the producer's
    # shared messages and the consumer's batches (fleet_events_per_transaction).
    published = len(stream)
    runs, _, _ = wait_until(
        lambda: (found := events_per_transaction(port))[2] >= published and found,
        timeout=30,
        what="every event counted",
    )
    assert runs < published / 4, f"{runs:.0f} transactions for {published} single publishes: hardly batched"


def test_data_breaking_its_types_model_is_refused_naming_the_field_and_nothing_is_sent(
    api: FleetUnderTest,
) -> None:
    with pytest.raises(fleet.InvalidEvent, match=r"data\.amount: Input should be greater than 0") as bad:
        fleet.publish("demo.deposit_recorded", {"account": "a-1", "amount": -5}, source="app", id="neg")
    assert bad.value.field == "data.amount"
    good = fleet.new_event("demo.deposit_recorded", deposit_data(0), source="app", id="beside-bad")
    bad_one = fleet.new_event("demo.deposit_recorded", {"account": "a-1", "amount": "5"}, source="app")
    with pytest.raises(fleet.InvalidEvent, match=r"data\.amount"):
        fleet.publish_events([good, bad_one])
    with pytest.raises(fleet.InvalidEvent, match=r"dataschema"):
        fleet.publish(
            "demo.deposit_recorded",
            deposit_data(0),
            source="app",
            dataschema="urn:fleet:schema:demo.deposit_recorded:2",
        )
    api.start_worker()
    typed = fleet.publish(DepositRecorded(account="a-1", amount=5), source="app", id="typed")
    wait_until(lambda: "typed" in api.deposits(), timeout=60, what="the typed deposit")
    assert typed == "typed" and not {"neg", "beside-bad"} & set(api.deposits())
