"""The one-time sign-in link `fleet up` prints on a laptop, as Jupyter prints its token: it signs
the first browser that opens it in as an operator, and never again. The web process honours it
only while it listens on loopback, so a deployed console never takes one."""

from __future__ import annotations

import hmac
import secrets

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
PATH = "/console/sign-in"
LOCAL_USER = "local"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def link(host: str, port: int, token: str) -> str:
    return f"http://{host}:{port}{PATH}?token={token}"


class SignInLink:
    """The token, until it is redeemed; then nothing opens the door but a configured login."""

    def __init__(self, token: str | None, host: str) -> None:
        self._token = token if host in LOOPBACK else None

    def __bool__(self) -> bool:
        return self._token is not None

    def redeem(self, offered: str) -> bool:
        # the console's views run on the event loop: no other request runs between check and clear
        token = self._token
        if token is None or not offered or not hmac.compare_digest(token.encode(), offered.encode()):
            return False
        self._token = None
        return True
