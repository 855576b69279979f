"""Settings, read once from `FLEET_*` environment variables, or from files named after them in
FLEET_SECRETS_DIR (a mounted Kubernetes Secret), and validated at start; the environment wins.

Defaults describe one machine (the quick start): Redis and PostgreSQL-or-SQLite on loopback.
Every process logs the broker and database it uses at start, so a default is never silent.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from engine.records import HistoryMode
from handlers.envelope import DEFAULT_MAX_EVENT_BYTES
from infra.ingress.webhook_sources import WebhookSource
from infra.redis_clients import RedisAccess

REDIS_SCHEMES = ("redis://", "rediss://", "sentinel://")

RABBITMQ_COUNTDOWN_LIMIT = 1500.0
"""The longest countdown a worker may hold on RabbitMQ: 25 min, under its consumer_timeout (30)."""
QUEUE_PREFIX_SEPARATORS = ".:-_"
"""A queue prefix ending in one of these is used as it is; any other gets a `.`."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEET_", frozen=True, extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        secrets_dir = os.environ.get("FLEET_SECRETS_DIR")
        if not secrets_dir:
            return init_settings, env_settings
        # one file per setting, named as its variable (FLEET_CONSOLE_SECRET), content stripped
        return init_settings, env_settings, SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir)

    secrets_dir: str | None = None
    """A directory of files named as settings (`FLEET_CONSOLE_SECRET`, ...), each holding its
    value: a Kubernetes Secret mounted as a volume. A variable set in the environment wins."""

    broker_url: str = "redis://127.0.0.1:6379/0"
    """Celery broker: `redis://`, `rediss://` (TLS), `sentinel://host:port[;sentinel://...]` (the
    master of FLEET_REDIS_SENTINEL_MASTER) or `amqp://`."""
    redis_url: str | None = None
    """Coordination store (attempt counters, delayed retries, rate limits); defaults to the broker
    when that is Redis, else to redis://127.0.0.1:6379/0. The same three schemes as the broker."""
    redis_sentinel_master: str | None = Field(None, min_length=1)
    """The Sentinel master group a `sentinel://` broker or Redis URL names (infra/redis_clients.py)."""
    redis_tls_ca: str | None = None
    """`rediss://`: PEM file of the CA the server's certificate is checked against; the system
    store when unset."""
    redis_tls_cert: str | None = None
    """`rediss://`: PEM client certificate, for a server that asks for one (`tls-auth-clients`)."""
    redis_tls_key: str | None = None
    """`rediss://`: the client certificate's PEM private key."""
    redis_min_replicas: int = Field(0, ge=0, le=16)
    """A producer's send to the Redis broker (fleet.publish, the ingress) is acknowledged only
    once this many replicas confirm it (`WAIT`), else it fails (`BrokerUnavailable`, 503); 0: once
    the master holds it (docs/scaling.md)."""
    redis_replica_timeout: float = Field(2.0, gt=0, le=60)
    """Seconds a send waits for FLEET_REDIS_MIN_REPLICAS to confirm it."""
    rabbitmq_queue_type: Literal["classic", "quorum"] = "classic"
    """RabbitMQ: `quorum` declares the fleet's queues replicated (Raft) with a delivery limit."""
    rabbitmq_delivery_limit: int = Field(20, ge=1)
    """Quorum queues: deliveries of one message before RabbitMQ moves it to the dead-letter queue
    `<queue>.poison` (a backstop above the fleet's own attempt limit)."""
    database_url: str = "sqlite:///fleet.db"
    """SQLAlchemy URL of the ledger, dead letters and outbox; PostgreSQL in production."""

    max_event_bytes: int = Field(DEFAULT_MAX_EVENT_BYTES, ge=1024)
    batch_size: int = Field(500, ge=1, le=10_000)
    """Most events one broker message carries."""
    check_data: bool = True
    """Check each event's data against its type's model where it enters (the producer, POST
    /events; docs/event-contracts.md). Off only to measure what the check costs (bench/)."""
    publish_timeout: float = Field(5.0, gt=0, le=300)
    """Seconds a producer (`fleet.publish`, `fleet publish`, the web ingress) waits on the broker
    for each step of a publish (connect, send, confirm) before it raises `BrokerUnavailable`
    (docs/publishing.md)."""
    visibility_timeout: int = Field(20, ge=10)
    """Redis broker: the lease, in seconds, on each message a worker holds. A live worker renews
    it every quarter lease however long it holds the message (infra/leases.py); a dead worker's
    messages go to another worker a lease after it died (docs/delivery.md)."""
    eta_max: float = Field(300.0, ge=0)
    """Retries due later than this go to the delayed store instead of a broker countdown, held
    in a worker's memory: keeps RabbitMQ's consumer timeout (30 min) and the workers' memory
    clear of long waits."""

    worker_concurrency: int = Field(2, ge=1)
    task_events: bool = False
    """Celery task events, for Flower; they cost the worker a good part of its throughput."""
    prefetch_multiplier: int = Field(4, ge=1)
    consume_batch: int = Field(100, ge=1, le=1_000)
    """Most broker messages a worker takes in one read and runs as one batch, in one guarded
    statement or transaction (docs/consumption.md); 1 turns consumer-side batching off."""
    key_prefix: str = Field("fleet", pattern=r"^[A-Za-z0-9_.:-]+$")
    """Prefix of every Redis key the fleet writes (see infra/keys.py)."""
    queue_prefix: str = Field("", pattern=r"^[A-Za-z0-9_.:-]*$")
    """Prefix of every broker queue name, so several fleets can share one broker; a `.` is added
    unless it ends in a separator (`acc2` gives `acc2.fleet.demo`). Build names with `queue_name`."""
    claim_leases: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)
    """`email.send=300,...`: the lease of a claim route's events, in seconds, in place of the
    routing table's; each event's handler may run 0.9 of it before its process is killed."""
    beat_lock_timeout: float = Field(10.0, ge=1, le=300)
    """Seconds the beat leader lock lasts unless extended: a standby beat fires jobs at most this
    long after the leader died (infra/schedules/leader.py)."""
    schedules: Annotated[dict[str, dict[str, Any]], NoDecode] = Field(default_factory=dict)
    """The seed of the configured schedules, JSON: `{"nightly": {"publish": "report.requested",
    "cron": "0 3 * * * Europe/Amsterdam", "data": {}}}`; keys in docs/schedules.md (`every`, `tz`,
    `catch_up`, ...). Jobs added, changed or removed at runtime (`fleet schedules add|set|remove`,
    the console) are stored in PostgreSQL and take the place of the seed's."""

    history: HistoryMode = HistoryMode.ALL
    """Event history for the console: `all` outcomes, only `failures` (retries, dead letters), `off`."""
    history_retention_days: float = Field(7.0, gt=0)
    """History entries older than this are deleted by the retention job (dead letters never are)."""
    dead_letter_archive_days: float = Field(30.0, gt=0)
    """Dead letters untouched this long are archived by the retention job: kept and replayable,
    out of the working list. Nothing deletes a dead letter but `fleet dlq purge`."""
    metrics_dir: str | None = None
    """Directory where every process of this machine writes its metric samples (emptied at start);
    a fresh temporary directory when unset. Read by the `fleet` entry point (workers/entry.py)."""
    worker_metrics_port: int | None = Field(None, ge=1, le=65535)
    """A worker serves /metrics (all its pool processes, summed) on this port when set."""
    worker_metrics_host: str = "0.0.0.0"  # noqa: S104 - a metrics port is scraped from outside the pod

    graph_base_url: str = "https://graph.microsoft.com/v1.0"
    """Microsoft Graph's root (v1.0); another host (a national cloud, a test stand-in) by configuration."""
    graph_authority: str = "https://login.microsoftonline.com"
    """Entra ID authority host the credential asks for tokens."""
    graph_tenant_id: str | None = None
    graph_client_id: str | None = None
    graph_client_secret: SecretStr | None = None
    graph_credential: str = Field("secret", pattern=r"^(secret|certificate|managed_identity)$")
    """How the fleet signs in to Graph: `secret`, `certificate` (a PEM at graph_certificate_path), or
    `managed_identity`."""
    graph_certificate_path: str | None = None
    """PEM with the app's private key and certificate (certificate credential, rich notifications)."""
    graph_ca_bundle: str | None = None
    """CA bundle to verify the authority with (a private authority); the system store when unset."""
    graph_scopes: str = "https://graph.microsoft.com/.default"
    graph_mailbox: str | None = None
    """The mailbox (user id or address) `email.send` sends from."""
    graph_notification_url: str | None = None
    """The webhook's public URL for change notifications (new subscriptions)."""
    graph_lifecycle_url: str | None = None
    graph_subscriptions: str = ""
    """Subscriptions to create, `resource|changeTypes` separated by `;`, e.g. `users|updated,deleted`."""
    graph_timeout: float = Field(10.0, gt=0, le=60)
    """Seconds a sign-in (each token request) or a Graph call may take before it counts as failed;
    kept well below the Graph routes' claim lease (120 s)."""

    web_host: str = "127.0.0.1"
    web_port: int = Field(8000, ge=1, le=65535)
    console_users: str = Field("", pattern=r"^([^:,\s]+:(viewer|operator):[^:,\s]+(,|$))*$")
    """Console logins, `alice:operator:<hash>,bob:viewer:<hash>` (`fleet console hash-password`);
    a hash of `-` allows no password login (the name still takes its role from the proxy header)."""
    console_secret: SecretStr | None = None
    """Key signing the console's session cookies; unset, a random key per process (so logins
    end when it restarts)."""
    console_sign_in_token: SecretStr | None = None
    """Set by `fleet up` when no console users are configured: the token of the one-time sign-in
    link it prints; honoured only while the web process listens on loopback."""
    console_trusted_header: str | None = Field(None, pattern=r"^[A-Za-z0-9-]+$")
    """A header set by a trusted reverse proxy naming the signed-in user (e.g. X-Forwarded-User)."""
    rabbitmq_management_url: SecretStr | None = None
    """RabbitMQ's management API, `http://user:password@rabbit:15672`: when set (and the broker
    is RabbitMQ), the queue gauges read each queue's waiting messages and its head message's age
    there (infra/rabbitmq_management.py); unset, depths come from AMQP and ages are unknown."""
    trace_url: str | None = None
    """A trace viewer's URL with `{trace_id}` in it (`http://jaeger:16686/trace/{trace_id}`): the
    console links an event's trace id (from its traceparent) there; unset, it shows the id alone."""
    trace_batched_events: bool = False
    """With tracing on: a `process` span of its own for each event run in a batch, inside the
    batch's span. Off, the batch's one span links each event's creation context; each of a
    batch's events costs a span to make and export (docs/tracing.md, "Cost")."""
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    log_format: Literal["text", "json"] = "text"
    """`json`: one JSON object per line, with the event and the trace it belongs to (infra/logs.py)."""
    rate_limits: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)
    """Per-downstream limits, `graph=20,payments=5.5` (calls per second, fleet-wide)."""
    downstream_slots: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)
    """Per-worker cap on the pool processes busy with one downstream at once, `graph=1,payments=2`;
    a downstream not named gets half the worker's pool (at least 1), so one slow downstream never
    holds every pool process (infra/slots.py)."""

    payments_url: str | None = None
    """The payment provider's base URL (orders); unset, payment steps fail with a clear error."""
    payments_timeout: float = Field(5.0, gt=0, le=60)
    """Seconds a payment call may take; the order's row stays locked meanwhile."""
    order_step_timeout: float = Field(300.0, gt=0)
    """Seconds an order may wait in a saga step before the time-out job compensates it."""

    ingress_max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    """Largest request body the web process reads for a batch of events or Graph notifications
    (a single event is held to FLEET_MAX_EVENT_BYTES); counted while reading."""
    api_key_cache_seconds: float = Field(5.0, ge=0)
    """The web process remembers API keys this long: a revoked key stops working within it."""
    webhook_sources: dict[str, WebhookSource] = Field(default_factory=dict)
    """Standard Webhooks senders as JSON, `{"shop": {"type": "shop.order_placed", "secrets":
    ["whsec_..."]}}`: `POST /webhooks/shop` is verified with those secrets and becomes that type."""
    webhook_tolerance: float = Field(300.0, gt=0)
    """Seconds a webhook's timestamp may be away from now; older deliveries are replays."""
    graph_token_issuer: str | None = None
    """Accepted issuers of rich notifications' validation tokens, separated by commas; by default
    the tenant's v1.0 and v2.0 issuers, `https://sts.windows.net/<FLEET_GRAPH_TENANT_ID>/` and
    `https://login.microsoftonline.com/<FLEET_GRAPH_TENANT_ID>/v2.0` (a national cloud names its
    own). Their audience is FLEET_GRAPH_CLIENT_ID."""
    graph_jwks_url: str = "https://login.microsoftonline.com/common/discovery/v2.0/keys"
    """Where the validation tokens' signing keys are published: `https://`, or `file:///path` (a
    JWKS document, read again when it changes); plain `http://` on loopback only."""
    graph_private_key_path: str | None = None
    """PEM private key that decrypts rich notifications; by default the key in
    FLEET_GRAPH_CERTIFICATE_PATH."""
    graph_certificate_id: str | None = None
    """The `encryptionCertificateId` given to Graph with the certificate; rich notifications are
    accepted only when it is set."""

    redis_stream: str = Field("fleet.events", min_length=1)
    """The Redis stream `fleet bridge redis-stream` consumes and `fleet publish --to redis-stream`
    appends to (one entry per event, field `event` = the CloudEvent JSON)."""
    redis_stream_url: str | None = None
    """The Redis holding the stream; defaults to the coordination store (FLEET_REDIS_URL)."""
    redis_stream_group: str = Field("fleet", min_length=1)
    """The stream's consumer group; every bridge process is one consumer of it."""
    redis_stream_maxlen: int = Field(1_000_000, ge=1000)
    """About how many entries the stream keeps (`XADD MAXLEN ~`); more than the bridge can lag by."""
    redis_stream_claim_idle: float = Field(60.0, gt=0)
    """Seconds an entry stays pending with a consumer before another bridge takes it over (a dead
    bridge's batch); longer than a hand-over can take, or a live batch is handed over twice."""
    servicebus_connection_string: SecretStr | None = None
    """Azure Service Bus by SAS connection string; or leave it unset and give the namespace."""
    servicebus_namespace: str | None = None
    """`<name>.servicebus.windows.net`, authenticated by azure-identity (DefaultAzureCredential:
    managed identity, workload identity, environment, Azure CLI)."""
    servicebus_credential: Literal[
        "default", "managed-identity", "workload-identity", "environment", "azure-cli"
    ] = "default"
    """How a process signs in to FLEET_SERVICEBUS_NAMESPACE (azure-identity): `default` tries the
    environment, workload identity, managed identity and the Azure CLI in turn; the others use one."""
    servicebus_client_id: str | None = Field(
        None, validation_alias=AliasChoices("FLEET_SERVICEBUS_CLIENT_ID", "AZURE_CLIENT_ID")
    )
    """The client id of a user-assigned managed identity (or of the workload identity's app);
    AZURE_CLIENT_ID, as azure-identity names it, is read too."""
    servicebus_queue: str = Field("fleet-events", min_length=1)
    """The queue `fleet bridge servicebus` consumes and `fleet publish --to servicebus` sends to."""
    servicebus_sessions: bool = False
    """The queue requires sessions: the bridge takes one session at a time, in order."""
    servicebus_lock_renewal: float = Field(300.0, gt=0)
    """Seconds the bridge keeps renewing a message's lock while its hand-over runs."""
    up_bridges: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """`FLEET_UP_BRIDGES=redis-stream,servicebus`: the bridges `fleet up` runs beside worker, beat and
    web. Unset: the Service Bus bridge when Service Bus is configured, no other."""

    domains: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """`FLEET_DOMAINS=demo,tickets`: the installed domains that run (entry points `fleet.domains`,
    handlers/domains.py). Unset: every installed domain."""

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str) -> str:
        if not value.startswith((*REDIS_SCHEMES, "amqp://", "amqps://", "pyamqp://")):
            raise ValueError("must start with redis://, rediss://, sentinel://, amqp:// or amqps://")
        return value

    @model_validator(mode="after")
    def _sentinel_needs_a_master(self) -> Settings:
        if not self.redis_sentinel_master and "sentinel://" in f"{self.broker_url} {self.redis_url}":
            raise ValueError("a sentinel:// URL needs FLEET_REDIS_SENTINEL_MASTER, the master group's name")
        return self

    def redis_access(self) -> RedisAccess:
        """How this fleet's Redis clients connect: TLS files, Sentinel group, replica acknowledgement."""
        return RedisAccess(
            sentinel_master=self.redis_sentinel_master,
            tls_ca=self.redis_tls_ca,
            tls_cert=self.redis_tls_cert,
            tls_key=self.redis_tls_key,
            min_replicas=self.redis_min_replicas,
            replica_timeout=self.redis_replica_timeout,
        )

    @field_validator("queue_prefix")
    @classmethod
    def _separated_prefix(cls, value: str) -> str:
        return value + "." if value and value[-1] not in QUEUE_PREFIX_SEPARATORS else value

    def queue_name(self, queue: str) -> str:
        """The broker's name of one of the fleet's queues (`fleet.demo`), with this fleet's prefix."""
        return self.queue_prefix + queue

    @field_validator("graph_jwks_url")
    @classmethod
    def _fetchable_keys(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("plain http:// only on loopback: signing keys must come over https://")
        if parts.scheme == "file" and (parts.netloc not in ("", "localhost") or not parts.path):
            raise ValueError("a file:// URL names a local file: file:///path/to/keys.json")
        if parts.scheme not in ("https", "http", "file"):
            raise ValueError("must be an https:// or file:// URL")
        return value

    @field_validator("trace_url")
    @classmethod
    def _trace_link_template(cls, value: str | None) -> str | None:
        if not value:
            return None
        if "{trace_id}" not in value:
            raise ValueError("must contain {trace_id}, where the trace id goes")
        try:
            value.format(trace_id="0" * 32)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"only {{trace_id}} may be in braces ({exc!r})") from None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("rabbitmq_management_url")
    @classmethod
    def _management_api(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parts = urlsplit(value.get_secret_value())
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must be an http:// or https:// URL of the management API")
        return value

    def trace_link(self, trace_id: str) -> str | None:
        """The trace viewer's page of `trace_id`, when FLEET_TRACE_URL is set."""
        return self.trace_url.format(trace_id=trace_id) if self.trace_url else None

    @property
    def graph_token_issuers(self) -> tuple[str, ...]:
        """The configured issuers (FLEET_GRAPH_TOKEN_ISSUER), or none: the tenant's defaults."""
        return tuple(i.strip() for i in (self.graph_token_issuer or "").split(",") if i.strip())

    @field_validator("schedules", mode="before")
    @classmethod
    def _parse_schedules(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from None

    @field_validator("rate_limits", "claim_leases", "downstream_slots", mode="before")
    @classmethod
    def _parse_limits(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        limits: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            name, sep, rate = item.partition("=")
            if not sep or not name:
                raise ValueError(f"expected name=rate, got {item!r}")
            limits[name.strip()] = float(rate)
        return limits

    @field_validator("downstream_slots")
    @classmethod
    def _at_least_one_slot(cls, value: dict[str, int]) -> dict[str, int]:
        if bad := {name: n for name, n in value.items() if n < 1}:
            raise ValueError(f"a downstream needs at least one slot: {bad}")
        return value

    @model_validator(mode="after")
    def _countdowns_within_rabbitmqs_consumer_timeout(self) -> Settings:
        if not self.broker_is_redis and self.eta_max > RABBITMQ_COUNTDOWN_LIMIT:
            raise ValueError(
                f"FLEET_ETA_MAX ({self.eta_max:g}) must be at most {RABBITMQ_COUNTDOWN_LIMIT:g} on "
                "RabbitMQ: a countdown held past its consumer_timeout (30 min by default) closes the "
                "worker's channel and hands every message it holds to another worker; longer waits "
                "belong in the delayed store (docs/delivery.md)"
            )
        return self

    @property
    def coordination_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        if self.broker_is_redis:
            return self.broker_url
        return "redis://127.0.0.1:6379/0"

    @field_validator("domains", mode="before")
    @classmethod
    def _parse_domains(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        return [name.strip() for name in value.split(",") if name.strip()]

    @field_validator("up_bridges", mode="before")
    @classmethod
    def _parse_bridges(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        names = [name.strip() for name in value.split(",") if name.strip()]
        if unknown := set(names) - {"redis-stream", "servicebus"}:
            raise ValueError(f"unknown bridges {sorted(unknown)}: choose from redis-stream, servicebus")
        return names

    @property
    def bridges_for_up(self) -> list[str]:
        if self.up_bridges:
            return list(self.up_bridges)
        configured = self.servicebus_connection_string is not None or self.servicebus_namespace
        return ["servicebus"] if configured else []

    @property
    def broker_is_redis(self) -> bool:
        return self.broker_url.startswith(REDIS_SCHEMES)
