"""The dead-letter store: keeps everything, groups by cause, filters, replays, purges on request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from engine.records import DeadLetter, Filter, fingerprint
from infra.dead_letters import SqlDeadLetters


def letter(event_id: str, error_type: str = "RetryableError", **changes: object) -> DeadLetter:
    fields: dict[str, object] = {
        "handler": "fleet.demo.x",
        "event_type": "demo.x",
        "source": "s",
        "event_id": event_id,
        "queue": "fleet.demo",
        "envelope": "{}",
        "attempts": 3,
        "error_type": error_type,
        "error_message": f"failed {event_id}",
        "traceback": "",
        "fingerprint": fingerprint(error_type, None),
    }
    return DeadLetter(**{**fields, **changes})  # type: ignore[arg-type]


def test_filters_narrow_and_groups_count_by_fingerprint(store_engine: Engine) -> None:
    store = SqlDeadLetters(store_engine)
    for n in range(3):
        store.add(letter(f"r{n}"))
    store.add(letter("p1", "InvalidEvent", event_type="demo.y"))
    assert store.count(Filter()) == 4
    assert [row.event_id for row in store.find(Filter(event_type="demo.y"))] == ["p1"]
    groups = {row.error_type: row.count for row in store.groups(Filter())}
    assert groups == {"RetryableError": 3, "InvalidEvent": 1}
    assert store.count(Filter(since=datetime.now(UTC) + timedelta(minutes=1))) == 0


def test_purge_deletes_only_what_the_filter_names(store_engine: Engine) -> None:
    store = SqlDeadLetters(store_engine)
    store.add(letter("a"))
    store.add(letter("b", "InvalidEvent"))
    assert store.purge(Filter(fingerprint=fingerprint("InvalidEvent", None))) == 1
    assert [row.event_id for row in store.find(Filter())] == ["a"]


def test_fingerprints_group_by_type_and_raising_function_not_message() -> None:
    def fail(message: str) -> Exception:
        try:
            raise ValueError(message)
        except ValueError as exc:
            return exc

    assert fingerprint("ValueError", fail("id 1")) == fingerprint("ValueError", fail("id 2"))
    assert fingerprint("ValueError", fail("x")) != fingerprint("KeyError", fail("x"))


def test_a_letter_with_nul_characters_is_kept_with_them_escaped(store_engine: Engine) -> None:
    store = SqlDeadLetters(store_engine)
    store.add(letter("nul", envelope='{"data": "a\x00b"}'))
    assert store.find(Filter())[0].envelope == '{"data": "a\\u0000b"}'


def test_only_a_filter_naming_letters_narrows_the_selection() -> None:
    assert not Filter().narrows
    assert not Filter(status="replayed").narrows, "a status alone still selects nearly everything"
    assert Filter(ids=[3]).narrows
    assert Filter(event_type="demo.x").narrows
    assert Filter(since=datetime.now(UTC)).narrows
