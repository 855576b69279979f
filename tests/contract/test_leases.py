"""The lease keeper on real Redis: what a live worker holds stays leased, a lost lease is told."""

from __future__ import annotations

import logging
import time
import uuid

import pytest
import redis

from infra.leases import LeaseKeeper, RedisLeases


def test_the_keeper_renews_what_is_held_and_warns_of_a_lease_lost_while_still_held(
    client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    key = f"c{uuid.uuid4().hex[:8]}:unacked_index"
    client.zadd(key, {"running": 1.0, "acked-meanwhile": 1.0})
    held = {"running", "swept-away"}
    keeper = LeaseKeeper(RedisLeases(client, key), lambda: sorted(held), interval=60)
    with caplog.at_level(logging.WARNING, logger="fleet.leases"):
        keeper.renew_once()
    assert (client.zscore(key, "running") or 0) > time.time() - 5
    assert client.zscore(key, "acked-meanwhile") == 1.0, "only what is held is renewed"
    assert client.zscore(key, "swept-away") is None, "a lost lease is not re-created"
    assert "1 message(s) this worker holds lost their lease" in caplog.text
    assert "swept-away" in caplog.text


def test_a_renewal_never_moves_a_lease_back(client: redis.Redis) -> None:
    key = f"c{uuid.uuid4().hex[:8]}:unacked_index"
    client.zadd(key, {"tag": 2000.0})
    assert RedisLeases(client, key).renew(["tag"], now=1000.0) == []
    assert client.zscore(key, "tag") == 2000.0


def test_the_keeper_survives_an_unreachable_redis(caplog: pytest.LogCaptureFixture) -> None:
    gone = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    keeper = LeaseKeeper(RedisLeases(gone, "unacked_index"), lambda: ["tag"], interval=60)
    with caplog.at_level(logging.WARNING, logger="fleet.leases"):
        keeper.renew_once()
    assert "could not renew the leases" in caplog.text
