"""Who is signed in to the console: password hashes, the configured users, roles.

Users come from `FLEET_CONSOLE_USERS` (`name:role:hash,...`), or a trusted reverse proxy
names the user in a header. Hashes are scrypt, self-describing:
`scrypt$<n>$<r>$<p>$<salt>$<key>` (base64url), so no `:` or `,` to clash with the list.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

_N, _R, _P, _KEY_BYTES = 2**14, 8, 1, 32
NO_PASSWORD = "-"  # noqa: S105 - the marker for "no password login", not a password


class Role(StrEnum):
    VIEWER = "viewer"
    """Sees every page; changes nothing."""
    OPERATOR = "operator"
    """Also replays, archives, edits, resizes and stops."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role

    def may(self, needed: Role) -> bool:
        return needed is Role.VIEWER or self.role is Role.OPERATOR


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_KEY_BYTES)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(key)
        actual = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


# Checked when the name is unknown, so a wrong name costs as long as a wrong password.
_DECOY = hash_password(secrets.token_urlsafe(16))


class Users:
    """The configured users; parsed once when the web process starts."""

    def __init__(self, spec: str) -> None:
        self._users: dict[str, tuple[Role, str]] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, role, hashed = item.split(":")
            self._users[name] = (Role(role), hashed)

    def __len__(self) -> int:
        return len(self._users)

    def authenticate(self, name: str, password: str) -> User | None:
        role, hashed = self._users.get(name, (None, _DECOY))
        if hashed == NO_PASSWORD:
            hashed = _DECOY
        if not verify_password(password, hashed) or role is None:
            return None
        return User(name, role)

    def named(self, name: str) -> User:
        """A user the proxy vouched for: their configured role, else read-only."""
        role, _ = self._users.get(name, (Role.VIEWER, NO_PASSWORD))
        return User(name, role)
