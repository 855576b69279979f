"""Every Redis client the fleet makes, for the broker and for FLEET_REDIS_URL, built from a URL:

- `redis://host:port/db`: one server;
- `rediss://host:port/db`: over TLS, verified against FLEET_REDIS_TLS_CA (the system store when
  unset), with the client certificate FLEET_REDIS_TLS_CERT / FLEET_REDIS_TLS_KEY when the
  server asks for one;
- `sentinel://host:port[/db][;sentinel://host:port...]`: the master of the group
  FLEET_REDIS_SENTINEL_MASTER, asked of the sentinels on every new connection, so that after a
  failover the next connection goes to the promoted replica (redis-py's `SentinelConnectionPool`).
  Sentinel and TLS together are not supported (the sentinels would need TLS too).

The same settings reach the Celery broker through `celery_broker_conf` (kombu's Sentinel
transport, `broker_use_ssl`). With FLEET_REDIS_MIN_REPLICAS above 0 a producer's send ends with
`WAIT` (`replicated`): acknowledged means held by that many replicas too (docs/scaling.md).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import SplitResult, unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

SENTINEL_PORT = 26379


class NotReplicated(redis.RedisError):
    """Redis took the write but fewer replicas than asked confirmed it within the timeout: a
    failover now could lose it, so it is not acknowledged (the producer sends again)."""


def is_sentinel_url(url: str) -> bool:
    return url.startswith("sentinel://")


@dataclass(frozen=True)
class RedisAccess:
    """How to reach the fleet's Redis servers: TLS files, Sentinel group, replica acknowledgement."""

    sentinel_master: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    min_replicas: int = 0
    replica_timeout: float = 5.0
    """Seconds `WAIT` may take for the replicas to confirm a producer's send."""

    def client(self, url: str, **kwargs: Any) -> redis.Redis:
        """A blocking client of the server (or the Sentinel group's master) `url` names."""
        if is_sentinel_url(url):
            hosts, db, password = _sentinels(url)
            # redis-py leaves its Sentinel classes untyped, hence the ignores
            manager = redis.sentinel.Sentinel(hosts, sentinel_kwargs=self._sentinel_kwargs(kwargs))  # type: ignore[no-untyped-call]
            master = manager.master_for(self._master(), db=db, password=password, **kwargs)  # type: ignore[no-untyped-call]
            return cast(redis.Redis, master)
        return redis.Redis.from_url(url, **self._tls(url, kwargs))

    def async_client(self, url: str, **kwargs: Any) -> redis.asyncio.Redis:
        """An asyncio client, as `client`."""
        if is_sentinel_url(url):
            hosts, db, password = _sentinels(url)
            manager = redis.asyncio.sentinel.Sentinel(hosts, sentinel_kwargs=self._sentinel_kwargs(kwargs))  # type: ignore[no-untyped-call]
            master = manager.master_for(self._master(), db=db, password=password, **kwargs)
            return cast(redis.asyncio.Redis, master)
        return redis.asyncio.Redis.from_url(url, **self._tls(url, kwargs))

    def wait_replicas(self) -> tuple[int, int] | None:
        """The `WAIT numreplicas timeout-ms` a producer's send ends with, or None when not asked."""
        if self.min_replicas <= 0:
            return None
        return self.min_replicas, max(1, int(self.replica_timeout * 1000))

    def replicated(self, confirmed: Any) -> None:
        """Raise `NotReplicated` unless `WAIT`'s reply counts enough replicas."""
        if self.min_replicas > 0 and int(confirmed) < self.min_replicas:
            raise NotReplicated(
                f"{confirmed} of {self.min_replicas} replica(s) confirmed the write within "
                f"{self.replica_timeout:g} s (FLEET_REDIS_MIN_REPLICAS)"
            )

    def celery_broker_conf(self, url: str) -> dict[str, Any]:
        """What a Celery app on the Redis broker `url` needs: its transport (the fleet's, on
        kombu's Sentinel channel for `sentinel://`), transport options and TLS settings."""
        conf: dict[str, Any] = {"broker_transport": "infra.redis_transport:Transport"}
        options: dict[str, Any] = {}
        if self.min_replicas > 0:  # what kombu sends (the workers' retries, follow-ups, relays)
            options |= {"min_replicas": self.min_replicas, "replica_timeout": self.replica_timeout}
        if is_sentinel_url(url):
            conf["broker_transport"] = "infra.redis_transport:SentinelTransport"
            options["master_name"] = self._master()
        if url.startswith("rediss://"):
            conf["broker_use_ssl"] = self._ssl_options()
        conf["transport_options"] = options
        return conf

    def _master(self) -> str:
        if not self.sentinel_master:
            raise ValueError("a sentinel:// URL needs FLEET_REDIS_SENTINEL_MASTER, the master group's name")
        return self.sentinel_master

    def _tls(self, url: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        return kwargs | self._ssl_options() if url.startswith("rediss://") else kwargs

    def _ssl_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
        if self.tls_ca:
            options["ssl_ca_certs"] = self.tls_ca
        if self.tls_cert:
            options["ssl_certfile"] = self.tls_cert
            options["ssl_keyfile"] = self.tls_key
        return options

    @staticmethod
    def _sentinel_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
        # The sentinels are asked with the same bounds as the master (a sentinel that accepts
        # and never answers must not hold a send).
        return {k: v for k, v in kwargs.items() if k in ("socket_timeout", "socket_connect_timeout")}


def _sentinels(url: str) -> tuple[list[tuple[str, int]], int, str | None]:
    """The sentinels, the database and the master's password a `sentinel://` URL names."""
    hosts: list[tuple[str, int]] = []
    db, password = 0, None
    for part in filter(None, (p.strip() for p in url.split(";"))):
        parts: SplitResult = urlsplit(part)
        if parts.scheme != "sentinel" or not parts.hostname:
            raise ValueError(f"not a sentinel://host:port URL: {part!r}")
        hosts.append((parts.hostname, parts.port or SENTINEL_PORT))
        if parts.path.strip("/"):
            db = int(parts.path.strip("/"))
        if parts.password:
            password = unquote(parts.password)
    return hosts, db, password
