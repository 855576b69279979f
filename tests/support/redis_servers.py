"""Redis servers a test starts for itself: a Sentinel group (master, replicas, sentinels) or a
TLS-only server, each on free loopback ports with a directory of its own, stopped by PID.

Never the shared Redis on 6379 (docs/testing.md).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.processes import free_port, wait_until

MASTER_GROUP = "fleet-test"


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the server dies with whatever it had not sent to its replicas."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise AssertionError("redis-server is not installed (Debian package redis-server)")
    return binary


def start_redis(directory: Path, *args: str, port: int | None = None, ready: bool = True) -> RedisServer:
    """`redis-server` on 127.0.0.1 with nothing kept on disk, `args` added; waits for its PING."""
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "redis.log"
    command = [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory)]
    command += ["--save", "", "--appendonly", "no", "--logfile", str(log), *args]
    server = RedisServer(port, subprocess.Popen(command, start_new_session=True), log)
    if ready:
        client = redis.Redis(port=port, socket_timeout=1)
        wait_until(lambda: _pings(client), timeout=15, what=f"redis-server on port {port}")
        client.close()
    return server


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@dataclass
class SentinelGroup:
    """A master, its replicas and the sentinels watching them."""

    master: RedisServer
    replicas: list[RedisServer]
    sentinels: list[RedisServer]
    servers: list[RedisServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The fleet's URL for it: `sentinel://...;sentinel://.../0`."""
        return ";".join(f"sentinel://127.0.0.1:{s.port}/0" for s in self.sentinels)

    def master_port(self) -> int:
        client = redis.Redis(port=self.sentinels[0].port, socket_timeout=2)
        try:
            _, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_GROUP)
            return int(port)
        finally:
            client.close()

    def stop(self) -> None:
        for server in self.servers:
            server.kill()


@contextlib.contextmanager
def sentinel_group(directory: Path, replicas: int = 2, sentinels: int = 1) -> Iterator[SentinelGroup]:
    """A group whose master is declared down 1 s after it stops answering (`down-after-milliseconds`
    is the sentinels' setting: production keeps its own, usually 5-30 s)."""
    master = start_redis(directory / "master")
    followers = [
        start_redis(directory / f"replica{n}", "--replicaof", "127.0.0.1", str(master.port))
        for n in range(replicas)
    ]
    group = SentinelGroup(master, followers, [], servers=[master, *followers])
    try:
        client = redis.Redis(port=master.port, socket_timeout=2)
        wait_until(
            lambda: int(client.info("replication")["connected_slaves"]) == replicas,
            timeout=20,
            what="the replicas in sync",
        )
        client.close()
        for n in range(sentinels):
            port = free_port()
            conf = directory / f"sentinel{n}" / "sentinel.conf"
            conf.parent.mkdir(parents=True, exist_ok=True)
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {conf.parent}\nlogfile {conf.parent / 'sentinel.log'}\n"
                f"sentinel monitor {MASTER_GROUP} 127.0.0.1 {master.port} {max(1, sentinels // 2 + 1)}\n"
                f"sentinel down-after-milliseconds {MASTER_GROUP} 1000\n"
                f"sentinel failover-timeout {MASTER_GROUP} 10000\n"
                f"sentinel parallel-syncs {MASTER_GROUP} {replicas}\n"
            )
            sentinel = RedisServer(
                port,
                subprocess.Popen([redis_server_binary(), str(conf), "--sentinel"], start_new_session=True),
                conf.parent / "sentinel.log",
            )
            group.sentinels.append(sentinel)
            group.servers.append(sentinel)
            probe = redis.Redis(port=port, socket_timeout=1)
            wait_until(lambda probe=probe: _pings(probe), timeout=15, what="a sentinel")  # type: ignore[misc]
            probe.close()
        wait_until(
            lambda: group.master_port() == master.port, timeout=15, what="the sentinels to see the master"
        )
        yield group
    finally:
        group.stop()


@dataclass(frozen=True)
class TestCA:
    """A CA made by the test, and a server and a client certificate it signed, as PEM files."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_test_ca(directory: Path) -> TestCA:
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleet test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    def issue(name: str, server: bool) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return cert_path, key_path

    ca_path = directory / "ca.crt"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server_cert, server_key = issue("server", server=True)
    client_cert, client_key = issue("client", server=False)
    return TestCA(ca_path, server_cert, server_key, client_cert, client_key)


@contextlib.contextmanager
def tls_redis(directory: Path, ca: TestCA) -> Iterator[RedisServer]:
    """A Redis that speaks TLS only, and asks every client for a certificate its CA signed."""
    port = free_port()
    server = start_redis(
        directory,
        "--port",
        "0",
        "--tls-port",
        str(port),
        "--tls-cert-file",
        str(ca.server_cert),
        "--tls-key-file",
        str(ca.server_key),
        "--tls-ca-cert-file",
        str(ca.ca),
        "--tls-auth-clients",
        "yes",
        port=port,  # the plain port the first --port names is turned off by the second
        ready=False,
    )
    client = redis.Redis(
        port=port,
        ssl=True,
        ssl_ca_certs=str(ca.ca),
        ssl_certfile=str(ca.client_cert),
        ssl_keyfile=str(ca.client_key),
        socket_timeout=1,
    )
    try:
        wait_until(lambda: _pings(client), timeout=15, what="the TLS redis-server")
        yield server
    finally:
        client.close()
        server.kill()


def wait_for_failover(group: SentinelGroup, old_port: int, timeout: float = 30.0) -> int:
    """The port of the replica the sentinels promoted, once they did."""

    def promoted() -> int:
        with contextlib.suppress(redis.RedisError):
            port = group.master_port()
            if port != old_port:
                return port
        return 0

    started = time.monotonic()
    port = int(wait_until(promoted, timeout=timeout, interval=0.2, what="the sentinels to promote a replica"))
    assert time.monotonic() - started < timeout
    return port
