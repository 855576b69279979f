"""Settings, read once from `FLEET_*` environment variables and validated at start.

Defaults describe one machine (the quick start): Redis and PostgreSQL-or-SQLite on loopback.
Every process logs the broker and database it uses at start, so a default is never silent.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from handlers.envelope import DEFAULT_MAX_EVENT_BYTES


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEET_", frozen=True, extra="ignore")

    broker_url: str = "redis://127.0.0.1:6379/0"
    """Celery broker: `redis://` or `amqp://`."""
    redis_url: str | None = None
    """Coordination store (attempt counters, delayed retries, rate limits); defaults to the broker
    when that is Redis, else to redis://127.0.0.1:6379/0."""
    database_url: str = "sqlite:///fleet.db"
    """SQLAlchemy URL of the ledger, dead letters and outbox; PostgreSQL in production."""

    max_event_bytes: int = Field(DEFAULT_MAX_EVENT_BYTES, ge=1024)
    batch_size: int = Field(500, ge=1, le=10_000)
    """Most events one broker message carries."""
    visibility_timeout: int = Field(3600, ge=10)
    """Redis broker: seconds before an unacknowledged message is given to another worker."""
    eta_max: float = Field(300.0, ge=0)
    """Retries due later than this go to the delayed store instead of a broker countdown, so a
    waiting retry never outlives the visibility timeout (and RabbitMQ's consumer timeout)."""

    worker_concurrency: int = Field(2, ge=1)
    task_events: bool = False
    """Celery task events, for Flower; they cost the worker a good part of its throughput."""
    prefetch_multiplier: int = Field(4, ge=1)
    key_prefix: str = Field("fleet", pattern=r"^[A-Za-z0-9_.:-]+$")
    """Prefix of every Redis key the fleet writes (see infra/keys.py)."""
    queue_prefix: str = Field("", pattern=r"^[A-Za-z0-9_.:-]*$")
    """Prefix of every broker queue name, so several fleets can share one broker."""

    web_host: str = "127.0.0.1"
    web_port: int = Field(8000, ge=1, le=65535)
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    rate_limits: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)
    """Per-downstream limits, `graph=20,payments=5.5` (calls per second, fleet-wide)."""

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "amqp://", "amqps://", "pyamqp://")):
            raise ValueError("must start with redis://, rediss://, amqp:// or amqps://")
        return value

    @field_validator("rate_limits", mode="before")
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

    @model_validator(mode="after")
    def _retries_outlive_no_visibility_timeout(self) -> Settings:
        if self.broker_is_redis and self.eta_max * 2 > self.visibility_timeout:
            raise ValueError(
                f"FLEET_ETA_MAX ({self.eta_max:g}) must be at most half of FLEET_VISIBILITY_TIMEOUT "
                f"({self.visibility_timeout}): a retry waiting in a worker past the visibility timeout "
                "is handed to a second worker and runs twice"
            )
        return self

    @property
    def coordination_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        if self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return "redis://127.0.0.1:6379/0"

    @property
    def broker_is_redis(self) -> bool:
        return self.broker_url.startswith(("redis://", "rediss://"))


def load_settings() -> Settings:
    """Read the environment; a `pydantic.ValidationError` names the bad variable."""
    return Settings()
