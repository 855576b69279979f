"""CSRF protection: a random token per session, required on every POST.

The token lives in the signed session cookie and is echoed in each form (field `csrf`) or,
from JavaScript, in the `X-CSRF-Token` header; a POST whose token does not match is refused.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

FIELD = "csrf"
HEADER = "x-csrf-token"


def token(session: dict[str, Any]) -> str:
    """The session's token, made on first use."""
    if not isinstance(session.get(FIELD), str):
        session[FIELD] = secrets.token_urlsafe(32)
    return str(session[FIELD])


def rotate(session: dict[str, Any]) -> None:
    """A new token at login, so a token seen before signing in is worth nothing after."""
    session[FIELD] = secrets.token_urlsafe(32)


def valid(session: dict[str, Any], sent: object) -> bool:
    expected = session.get(FIELD)
    if not isinstance(expected, str) or not isinstance(sent, str) or not sent:
        return False
    return hmac.compare_digest(expected.encode(), sent.encode())
