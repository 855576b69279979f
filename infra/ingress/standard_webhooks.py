"""The Standard Webhooks signature scheme (https://www.standardwebhooks.com), verify side.

The signed content is `{webhook-id}.{webhook-timestamp}.{body}`, HMAC-SHA256 with the secret's
bytes (`whsec_` + base64); `webhook-signature` holds space-separated `v1,<base64>` entries. Any
configured secret may match, so a sender can rotate its secret without a gap.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence


class SignatureRejected(Exception):
    """The webhook's headers or signature did not verify; the message says why."""


def secret_bytes(secret: str) -> bytes:
    """The key bytes of a `whsec_<base64>` secret; raises ValueError for anything else."""
    if not secret.startswith("whsec_"):
        raise ValueError("a Standard Webhooks secret starts with 'whsec_'")
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise ValueError("a Standard Webhooks secret is 'whsec_' and base64") from None


def sign(secret: str, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """`v1,<base64>` for this message (senders and tests use it)."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secrets: Sequence[str],
    *,
    msg_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    tolerance: float,
) -> int:
    """Check headers and signature; returns the timestamp. Raises `SignatureRejected`."""
    if not msg_id or not timestamp or not signature:
        raise SignatureRejected("webhook-id, webhook-timestamp and webhook-signature are required")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise SignatureRejected("webhook-timestamp must be integer seconds since the epoch") from None
    # Both ways: an old timestamp is a replay, a future one would outlive the replay window.
    if abs(now - sent_at) > tolerance:
        raise SignatureRejected(f"webhook-timestamp is more than {tolerance:g}s from now")
    offered = [entry.partition(",")[2].encode() for entry in signature.split() if entry.startswith("v1,")]
    for secret in secrets:
        expected = sign(secret, msg_id, timestamp, body).partition(",")[2].encode()
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return sent_at
    raise SignatureRejected("no webhook-signature matches a configured secret")
