"""Group commit across threads (infra/group_commit.py): a lone call sends at once; calls that come
while a send is under way go out together in the next; each call hears its own outcome."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from infra.group_commit import GroupCommit


class Broker:
    """Records each send's calls; the first send waits until released, so others queue behind it."""

    def __init__(self) -> None:
        self.sends: list[list[Sequence[str]]] = []
        self.first_started = threading.Event()
        self.release = threading.Event()
        self.refuse: set[str] = set()

    def send(self, calls: list[Sequence[str]]) -> list[BaseException | None]:
        self.sends.append(calls)
        if len(self.sends) == 1:
            self.first_started.set()
            assert self.release.wait(10)
        return [ValueError(f"refused {call}") if set(call) & self.refuse else None for call in calls]


def test_a_lone_call_is_sent_at_once_in_a_send_of_its_own() -> None:
    broker = Broker()
    broker.release.set()
    group = GroupCommit(broker.send)
    group.submit(["a"])
    group.submit(["b", "c"])
    assert broker.sends == [[["a"]], [["b", "c"]]]


def test_calls_made_during_a_send_go_out_together_in_the_next_and_each_hears_its_own_outcome() -> None:
    broker = Broker()
    broker.refuse = {"bad"}
    group = GroupCommit(broker.send)
    outcomes: dict[str, BaseException | None] = {}

    def call(*items: str) -> None:
        try:
            group.submit(list(items))
            outcomes[items[0]] = None
        except ValueError as exc:
            outcomes[items[0]] = exc

    first = threading.Thread(target=call, args=("first",))
    first.start()
    assert broker.first_started.wait(10)
    waiting = [threading.Thread(target=call, args=(name,)) for name in ("w1", "bad", "w2")]
    for thread in waiting:
        thread.start()
    while len(group._line) < 3:  # all three queued behind the first send
        threading.Event().wait(0.01)
    broker.release.set()
    for thread in [first, *waiting]:
        thread.join(10)
    assert len(broker.sends) == 2
    assert sorted(call[0] for call in broker.sends[1]) == ["bad", "w1", "w2"]
    assert outcomes["first"] is None and outcomes["w1"] is None and outcomes["w2"] is None
    assert isinstance(outcomes["bad"], ValueError)


def test_a_send_that_raises_fails_every_call_it_carried_and_the_next_call_still_goes_out() -> None:
    def broken(calls: list[Sequence[str]]) -> list[BaseException | None]:
        raise ConnectionError("gone")

    group = GroupCommit(broken)
    with pytest.raises(ConnectionError):
        group.submit(["a"])
    with pytest.raises(ConnectionError):  # the turn was passed back: no call hangs
        group.submit(["b"])
