"""The hosts of the cluster bench: network namespaces joined by veth links to one bridge in the
root namespace, and the faults done to them (a silent partition, a slow link, a lost host).

Addresses are in 10.231.7.0/24; the bridge holds the gateway, .1, so the harness (in the root
namespace) reaches every host and a host reaches the harness's TCP proxy. Every name starts with
`flc-`; a run interrupted hard is cleaned up by the next one (`Network.up` first takes down what
it would build).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

PREFIX = "flc-"
BRIDGE = f"{PREFIX}br"
SUBNET = "10.231.7"
GATEWAY = f"{SUBNET}.1"
INSIDE = "eth0"  # each host's end of its link, inside its namespace


def run(*argv: str, check: bool = True) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


@dataclass(frozen=True)
class Host:
    """One namespace: a machine of the cluster with one address on the bridge."""

    name: str
    number: int
    subnet: str = SUBNET

    @property
    def namespace(self) -> str:
        return f"{PREFIX}{self.name}"

    @property
    def address(self) -> str:
        return f"{self.subnet}.{self.number}"

    @property
    def link(self) -> str:
        """The root namespace's end of the host's veth link (on the bridge)."""
        return f"{PREFIX}{self.name}-h"

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *argv]

    def run(self, *argv: str, check: bool = True) -> str:
        return run(*self.command(argv), check=check)

    def pids(self) -> list[int]:
        """Every process running in the host's namespace."""
        out = run("ip", "netns", "pids", self.namespace, check=False)
        return [int(pid) for pid in out.split()]

    def kill_everything(self) -> int:
        """SIGKILL every process of the host at once, as a machine that loses power."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def partition(self) -> None:
        """Drop every packet in and out of the host's link (loopback stays): its peers see silence,
        no reset, as with a pulled cable or a failed switch port."""
        self.run("iptables", "-I", "INPUT", "-i", INSIDE, "-j", "DROP")
        self.run("iptables", "-I", "OUTPUT", "-o", INSIDE, "-j", "DROP")

    def heal(self) -> None:
        self.run("iptables", "-D", "INPUT", "-i", INSIDE, "-j", "DROP", check=False)
        self.run("iptables", "-D", "OUTPUT", "-o", INSIDE, "-j", "DROP", check=False)

    def limit_bandwidth(self, rate: str) -> None:
        """A token bucket on both ends of the host's link: `rate` (tc units, `2mbit`) each way."""
        tbf = ["tbf", "rate", rate, "burst", "16kb", "latency", "200ms"]
        self.run("tc", "qdisc", "replace", "dev", INSIDE, "root", *tbf)
        run("tc", "qdisc", "replace", "dev", self.link, "root", *tbf)

    def unlimit_bandwidth(self) -> None:
        self.run("tc", "qdisc", "del", "dev", INSIDE, "root", check=False)
        run("tc", "qdisc", "del", "dev", self.link, "root", check=False)


class Network:
    """The bridge and the hosts on it; `up` builds them, `down` removes every trace (also of a
    run of the same hosts interrupted hard before)."""

    def __init__(self, hosts: Sequence[Host], bridge: str = BRIDGE) -> None:
        self.hosts = list(hosts)
        self.bridge = bridge
        subnets = {host.subnet for host in self.hosts}
        if len(subnets) != 1:
            raise ValueError(f"one subnet per network, not {sorted(subnets)}")
        self.gateway = f"{subnets.pop()}.1"

    def up(self) -> None:
        self.down()
        run("ip", "link", "add", self.bridge, "type", "bridge")
        run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        for host in self.hosts:
            run("ip", "netns", "add", host.namespace)
            veth = ["type", "veth", "peer", "name", INSIDE, "netns", host.namespace]
            run("ip", "link", "add", host.link, *veth)
            run("ip", "link", "set", host.link, "master", self.bridge, "up")
            host.run("ip", "addr", "add", f"{host.address}/24", "dev", INSIDE)
            host.run("ip", "link", "set", INSIDE, "up")
            host.run("ip", "link", "set", "lo", "up")

    def down(self) -> None:
        """Kill what runs on the hosts, delete their namespaces (their veth ends and iptables
        rules go with them) and the bridge."""
        existing = _namespaces()
        for host in self.hosts:
            if host.namespace in existing:
                host.kill_everything()
                run("ip", "netns", "del", host.namespace, check=False)
            run("ip", "link", "del", host.link, check=False)
        run("ip", "link", "del", self.bridge, check=False)

    def leftovers(self) -> list[str]:
        """The namespaces and links of this network that exist now (none after `down`)."""
        namespaces = {
            line.split()[0] for line in run("ip", "netns", "list", check=False).splitlines() if line
        }
        links = {
            line.split(":")[1].strip().split("@")[0]
            for line in run("ip", "-o", "link", "show", check=False).splitlines()
            if line.count(":") > 1
        }
        names = {host.namespace for host in self.hosts} | {host.link for host in self.hosts} | {self.bridge}
        return sorted(names & (namespaces | links))


def _namespaces() -> set[str]:
    return {line.split()[0] for line in run("ip", "netns", "list", check=False).splitlines() if line.strip()}
