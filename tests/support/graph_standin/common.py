"""What the Graph stand-in's parts share: the reply shape and Graph's error body."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

Reply = tuple[int, dict[str, Any] | None, dict[str, str]]
"""Status, JSON body (None: no body), headers."""


def now() -> datetime:
    return datetime.now(UTC)


def error(status: int, code: str, message: str = "", headers: dict[str, str] | None = None) -> Reply:
    return status, {"error": {"code": code, "message": message or code}}, headers or {}
