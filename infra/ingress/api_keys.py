"""API keys of the events API: created, listed and revoked by operators, checked per request.

A key reads `fk_<id>_<secret>`. Only sha256 of the secret is stored: the secret is 32 random
bytes, so a fast hash is enough (a slow password hash guards low-entropy secrets, not these).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase

from sqlalchemy import Engine, select, update

from infra.ingress.schema import api_keys

_PREFIX = "fk_"


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    event_types: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None

    def may_publish(self, event_type: str) -> bool:
        return any(fnmatchcase(event_type, pattern) for pattern in self.event_types)


@dataclass(frozen=True)
class _Entry:
    key: ApiKey | None
    secret_hash: str
    fetched: float


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SqlApiKeys:
    """The key store. `authenticate` caches rows for `cache_seconds`, so a revocation takes
    effect within that time without a database read on every request. At most `cache_entries`
    ids are remembered (the longest since read from the database go first), so tokens with
    made-up ids, each remembered as unknown, cannot grow the process without bound."""

    def __init__(self, engine: Engine, *, cache_seconds: float = 5.0, cache_entries: int = 10_000) -> None:
        self._engine = engine
        self._cache_seconds = cache_seconds
        self._cache_entries = cache_entries
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, name: str, event_types: Sequence[str]) -> tuple[ApiKey, str]:
        """Store a new key; returns it and the token, which is shown once and never stored."""
        if not event_types:
            raise ValueError("a key must be allowed at least one event type (or pattern)")
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self._engine.begin() as connection:
            connection.execute(
                api_keys.insert().values(
                    id=key_id,
                    name=name,
                    secret_hash=_hash(secret),
                    event_types=list(event_types),
                    created_at=now,
                )
            )
        return ApiKey(key_id, name, tuple(event_types), now, None), f"{_PREFIX}{key_id}_{secret}"

    def list(self, *, include_revoked: bool = False) -> list[ApiKey]:
        query = select(api_keys).order_by(api_keys.c.created_at)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with self._engine.connect() as connection:
            return [_key(row) for row in connection.execute(query)]

    def revoke(self, key_id: str) -> bool:
        with self._engine.begin() as connection:
            result = connection.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        with self._lock:
            self._cache.pop(key_id, None)
        return bool(result.rowcount)

    def authenticate(self, token: str) -> ApiKey | None:
        """The live key this token belongs to, or None (unknown, wrong secret or revoked)."""
        parsed = _parse(token)
        if parsed is None:
            return None
        key_id, secret = parsed
        return _check(self._lookup(key_id), secret)

    def authenticate_cached(self, token: str) -> tuple[bool, ApiKey | None]:
        """`(True, what authenticate would answer)` when memory decides it, `(False, None)` when
        the database must be read first; never blocks on I/O."""
        parsed = _parse(token)
        if parsed is None:
            return True, None
        key_id, secret = parsed
        entry = self._fresh(key_id, time.monotonic())
        return (False, None) if entry is None else (True, _check(entry, secret))

    def _fresh(self, key_id: str, now: float) -> _Entry | None:
        with self._lock:
            cached = self._cache.get(key_id)
        return cached if cached is not None and now - cached.fetched < self._cache_seconds else None

    def _lookup(self, key_id: str) -> _Entry:
        now = time.monotonic()
        cached = self._fresh(key_id, now)
        if cached is not None:
            return cached
        with self._engine.connect() as connection:
            row = connection.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        entry = _Entry(_key(row), row.secret_hash, now) if row else _Entry(None, "0" * 64, now)
        with self._lock:
            self._cache[key_id] = entry
            self._cache.move_to_end(key_id)
            while len(self._cache) > self._cache_entries:
                self._cache.popitem(last=False)
        return entry


def _parse(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed token."""
    key_id, _, secret = token.removeprefix(_PREFIX).partition("_")
    return (key_id, secret) if token.startswith(_PREFIX) and key_id and secret else None


def _check(entry: _Entry, secret: str) -> ApiKey | None:
    # Compare even when the key is unknown, so timing does not tell which ids exist.
    matches = hmac.compare_digest(_hash(secret), entry.secret_hash)
    if entry.key is None or not matches or entry.key.revoked_at is not None:
        return None
    return entry.key


def _key(row: object) -> ApiKey:
    return ApiKey(
        id=row.id,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        event_types=tuple(row.event_types),  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
        revoked_at=row.revoked_at,  # type: ignore[attr-defined]
    )
