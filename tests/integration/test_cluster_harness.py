"""The cluster bench's parts (bench/cluster, docs/scaling-harness.md): hosts on network namespaces
that reach each other over the bridge, a partition that silences one and a heal that brings it
back, a teardown that leaves no namespace or link; and the checker's counting.

The scenarios themselves take minutes (a lease of 20 s, 50 s of flow): they run by hand with
`sudo .venv/bin/python -m bench.cluster`, not here. The network needs root (CAP_NET_ADMIN for
`ip netns`, veth and iptables): skipped without it, and a failure under CI=true, as a missing
service is (tests/support/services.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from bench.cluster import checker
from bench.cluster.network import Host, Network

pytestmark = pytest.mark.integration

SUBNET = "10.231.9"  # not the bench's 10.231.7: a bench may run beside the tests
SERVER, CLIENT = Host("t-srv", 2, subnet=SUBNET), Host("t-cli", 3, subnet=SUBNET)
PORT = 8089


def require_root() -> None:
    missing = [tool for tool in ("ip", "iptables") if shutil.which(tool) is None]
    if os.geteuid() != 0 or missing:
        message = (
            f"bench.cluster's network needs root and {', '.join(missing) or 'ip, iptables'}: run as root"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture
def network() -> Iterator[Network]:
    require_root()
    network = Network([SERVER, CLIENT], bridge="flc-tbr")
    network.up()
    try:
        yield network
    finally:
        network.down()


def connects(host: Host, address: str) -> bool:
    probe = f"import socket; socket.create_connection(({address!r}, {PORT}), timeout=1).close()"
    done = subprocess.run(host.command([sys.executable, "-c", probe]), capture_output=True, check=False)
    return done.returncode == 0


def test_hosts_reach_each_other_a_partition_silences_one_and_teardown_leaves_nothing(
    network: Network,
) -> None:
    server = subprocess.Popen(
        SERVER.command([sys.executable, "-m", "http.server", str(PORT), "--bind", SERVER.address]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while not connects(CLIENT, SERVER.address):
            assert time.monotonic() < deadline, "the client host never reached the server host"
            time.sleep(0.2)
        assert server.pid in SERVER.pids()

        SERVER.partition()
        assert not connects(CLIENT, SERVER.address)
        assert connects(SERVER, SERVER.address), "a partition cuts the link, not the host's own loopback"
        SERVER.heal()
        assert connects(CLIENT, SERVER.address)

        assert SERVER.kill_everything() >= 1
        server.wait(10)
    finally:
        server.kill()
        server.wait(10)
    network.down()
    assert network.leftovers() == []


def _write_sent(path: Path, rows: list[tuple[str, str]]) -> None:
    lines = ["event_id,sent_at,status,answered_at"] + [f"{i},1.0,{status},2.0" for i, status in rows]
    path.write_text("\n".join(lines) + "\n")


def test_the_checker_counts_acknowledged_effects_doubles_losses_and_dead_letters(
    engine: Engine, postgres_url: str, tmp_path: Path
) -> None:
    sent = tmp_path / "sent.csv"
    _write_sent(
        sent,
        [
            ("run-0", "202"),  # took effect once
            ("run-1", "202"),  # twice: doubled
            ("run-2", "202"),  # never: lost
            ("run-3", "202"),  # dead-lettered
            ("run-4", "503"),  # refused, yet in effect (the broker had it before the answer failed)
            ("run-5", "ConnectTimeout"),  # refused, no effect
        ],
    )
    with engine.begin() as connection:
        for event_id, at in [
            ("run-0", 100.0),
            ("run-1", 101.0),
            ("run-1", 102.0),
            ("run-4", 107.5),
            ("other-9", 500.0),
        ]:
            connection.execute(
                text(
                    "INSERT INTO demo_deposits (account, amount, event_id, recorded_at)"
                    " VALUES ('a', 1, :e, :t)"
                ),
                {"e": event_id, "t": at},
            )
        connection.execute(
            text(
                "INSERT INTO fleet_dead_letters (handler, event_type, source, event_id, queue, envelope,"
                " attempts, error_type, error_message, traceback, fingerprint, first_failed_at,"
                " last_failed_at, status)"
                " VALUES ('h', 't', 's', 'run-3', 'q', '{}', 4, 'E', 'm', '', 'f', now(), now(), 'dead')"
            )
        )
    figures = checker.check("unit", sent, postgres_url, "run", fault_end=100.0)
    assert figures == checker.Figures(
        scenario="unit",
        sent=6,
        acknowledged=4,
        took_effect=3,
        doubled=1,
        lost=1,
        dead_lettered=1,
        unacknowledged_in_effect=1,
        recovery_seconds=7.5,
        caught_seconds=7.5,  # every event was sent at 1.0, before the fault's end
    )
    assert checker.lost_ids(sent, postgres_url, "run") == ["run-2"]
