"""API keys as the events endpoint checks them: from memory when it can decide there (on the
event loop, no thread), from the database otherwise; a revocation is never answered from memory."""

from __future__ import annotations

from sqlalchemy import Engine

from infra.ingress.api_keys import ApiKey, SqlApiKeys


def _id(key: ApiKey | None) -> str | None:
    return None if key is None else key.id


def _cached(keys: SqlApiKeys, token: str) -> tuple[bool, str | None]:
    decided, key = keys.authenticate_cached(token)
    return decided, _id(key)


def test_memory_decides_only_what_it_holds_and_agrees_with_the_database(store_engine: Engine) -> None:
    keys = SqlApiKeys(store_engine)
    key, token = keys.create("shop", ["demo.*"])
    assert _cached(keys, token) == (False, None), "never read: the database decides"
    assert _id(keys.authenticate(token)) == key.id
    assert _cached(keys, token) == (True, key.id)
    wrong_secret = token[: token.rindex("_") + 1] + "not-the-secret"
    assert _cached(keys, wrong_secret) == (True, None)
    assert _cached(keys, "not a token") == (True, None)


def test_a_revoked_key_goes_back_to_the_database_and_is_refused(store_engine: Engine) -> None:
    keys = SqlApiKeys(store_engine)
    key, token = keys.create("shop", ["demo.*"])
    assert _id(keys.authenticate(token)) == key.id
    assert keys.revoke(key.id)
    assert _cached(keys, token) == (False, None)
    assert keys.authenticate(token) is None
    assert _cached(keys, token) == (True, None)


def test_memory_forgets_after_its_lifetime(store_engine: Engine) -> None:
    keys = SqlApiKeys(store_engine, cache_seconds=0.0)
    key, token = keys.create("shop", ["demo.*"])
    assert _id(keys.authenticate(token)) == key.id
    assert _cached(keys, token) == (False, None)


def test_made_up_key_ids_cannot_grow_the_memory_past_its_bound(store_engine: Engine) -> None:
    keys = SqlApiKeys(store_engine, cache_entries=3)
    key, token = keys.create("shop", ["demo.*"])
    keys.authenticate(token)
    for n in range(10):  # each remembered as unknown, pushing older entries out
        assert keys.authenticate(f"fk_madeup{n}_secret") is None
    assert _cached(keys, "fk_madeup9_secret") == (True, None)
    assert _cached(keys, "fk_madeup0_secret") == (False, None), "pushed out"
    assert _cached(keys, token) == (False, None), "pushed out; the database decides again"
    assert _id(keys.authenticate(token)) == key.id
