"""Rich Graph notifications: validation tokens checked, `encryptedContent` verified and decrypted.

Graph encrypts each item's resource data with a fresh symmetric key (AES-256-CBC, the IV being
the key's first 16 bytes), encrypts that key with the app certificate's public key (RSA-OAEP,
SHA-1), and signs the ciphertext with HMAC-SHA256 under the symmetric key. The collection's
`validationTokens` are JWTs from Entra ID that prove Graph sent it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse
from urllib.request import url2pathname

import jwt
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

GRAPH_CHANGE_TRACKING_APP_ID = "0bf30f3b-4a52-48df-9a82-234910c4a086"
"""The app every validation token Graph sends is issued to (Microsoft's change-tracking
application): the token's `azp` (v2.0 tokens) or `appid` (v1.0 tokens)."""

# Graph wraps the data key with RSA-OAEP over SHA-1: its choice, not ours; OAEP's security does
# not rest on SHA-1's collision resistance.
GRAPH_KEY_PADDING = OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303


class NotificationRejected(Exception):
    """A rich notification or its tokens did not verify; the message says why."""


@dataclass(frozen=True)
class TokenPolicy:
    """What a validation token must say: our app as audience, our tenant as issuer.

    Entra ID issues v1.0 tokens (issuer `https://sts.windows.net/{tenant}/`, Graph's app in
    `appid`) or v2.0 tokens (issuer `https://login.microsoftonline.com/{tenant}/v2.0`, in `azp`),
    depending on the app registration's `accessTokenAcceptedVersion`; both are accepted. `issuers`
    replaces both (national clouds).
    """

    jwks_url: str
    app_id: str
    tenant_id: str
    issuers: tuple[str, ...] = ()
    publisher_app_id: str = GRAPH_CHANGE_TRACKING_APP_ID

    @property
    def expected_issuers(self) -> tuple[str, ...]:
        return self.issuers or (
            f"https://sts.windows.net/{self.tenant_id}/",
            f"https://login.microsoftonline.com/{self.tenant_id}/v2.0",
        )


class SigningKeys(Protocol):
    def get_signing_key_from_jwt(self, token: str) -> jwt.PyJWK: ...


class FileKeys:
    """Signing keys from a JWKS file (`file://`), read again whenever the file changes: keys
    pinned by deployment, or a machine that may not reach Entra ID's discovery endpoint."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._keys: jwt.PyJWKSet | None = None

    def get_signing_key_from_jwt(self, token: str) -> jwt.PyJWK:
        kid = jwt.get_unverified_header(token).get("kid")
        keys = self._current()
        for key in keys.keys:
            if key.key_id == kid:
                return key
        raise jwt.PyJWKClientError(f"no signing key {kid!r} in {self._path}")

    def _current(self) -> jwt.PyJWKSet:
        with self._lock:
            try:
                stat = self._path.stat()
                stamp = (stat.st_mtime_ns, stat.st_size)
                if self._keys is None or stamp != self._stamp:
                    self._keys = jwt.PyJWKSet.from_json(self._path.read_text())
                    self._stamp = stamp
            except (OSError, ValueError) as exc:
                raise jwt.PyJWKClientError(f"signing keys unreadable at {self._path}: {exc}") from None
            return self._keys


def signing_keys(url: str) -> SigningKeys:
    """The key source for a JWKS URL (`https://`, `file://`; settings check which are allowed);
    no I/O until a token is checked."""
    parts = urlparse(url)
    if parts.scheme == "file":
        return FileKeys(Path(url2pathname(parts.path)))
    if parts.scheme not in ("https", "http"):
        raise ValueError(f"FLEET_GRAPH_JWKS_URL: signing keys cannot be read from {parts.scheme}://")
    # Keys are cached for an hour; a fetch may take at most 2 s of Graph's 3-second budget.
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=2)


class ValidationTokens:
    """Checks a collection's `validationTokens` against the signing keys at `jwks_url`."""

    def __init__(self, policy: TokenPolicy) -> None:
        self._policy = policy
        self._keys = signing_keys(policy.jwks_url)

    def check(self, tokens: Sequence[object]) -> None:
        """Raise `NotificationRejected` unless there are tokens and every one verifies (blocking I/O)."""
        if not tokens:
            raise NotificationRejected("validationTokens are required for rich notifications")
        for token in tokens:
            if not isinstance(token, str):
                raise NotificationRejected("a validation token must be a string")
            try:
                key = self._keys.get_signing_key_from_jwt(token)
                claims = jwt.decode(
                    token,
                    key.key,
                    algorithms=["RS256"],
                    audience=self._policy.app_id,
                    issuer=self._policy.expected_issuers,
                    options={"require": ["exp", "aud", "iss"]},
                )
            except jwt.PyJWTError as exc:
                raise NotificationRejected(f"validation token: {exc}") from None
            if _publisher(claims) != self._policy.publisher_app_id:
                raise NotificationRejected("validation token was not issued to Microsoft Graph")


def _publisher(claims: dict[str, Any]) -> object:
    """The app the token was issued to: `azp` in v2.0 tokens, `appid` in v1.0 tokens."""
    return claims["azp"] if "azp" in claims else claims.get("appid")


class ContentDecryptor:
    """Decrypts `encryptedContent` with the app certificate's private key."""

    def __init__(self, private_key_pem: bytes, certificate_id: str) -> None:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the Graph notification key must be an RSA private key")
        self._key = key
        self._certificate_id = certificate_id

    def decrypt(self, content: object) -> Any:
        """The decrypted resource data (JSON); raises `NotificationRejected`."""
        if not isinstance(content, dict):
            raise NotificationRejected("encryptedContent must be an object")
        if content.get("encryptionCertificateId") != self._certificate_id:
            raise NotificationRejected("encryptedContent names another certificate")
        try:
            data = base64.b64decode(content["data"], validate=True)
            signature = base64.b64decode(content["dataSignature"], validate=True)
            wrapped_key = base64.b64decode(content["dataKey"], validate=True)
        except (KeyError, TypeError, binascii.Error):
            raise NotificationRejected("encryptedContent needs base64 data, dataSignature, dataKey") from None
        try:
            symmetric_key = self._key.decrypt(wrapped_key, GRAPH_KEY_PADDING)
        except ValueError:
            raise NotificationRejected("dataKey does not decrypt with the app's key") from None
        # Verify before decrypting: nothing from the ciphertext is trusted until the HMAC matches.
        expected = hmac.new(symmetric_key, data, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, signature):
            raise NotificationRejected("dataSignature does not match: content was altered")
        try:
            decryptor = Cipher(algorithms.AES(symmetric_key), modes.CBC(symmetric_key[:16])).decryptor()
            padded = decryptor.update(data) + decryptor.finalize()
            unpadder = padding.PKCS7(128).unpadder()
            return json.loads(unpadder.update(padded) + unpadder.finalize())
        except ValueError:
            raise NotificationRejected("encryptedContent does not decrypt to JSON") from None


class GraphRichNotifications:
    """Both checks of a rich notification, as the webhook uses them."""

    def __init__(self, tokens: ValidationTokens, decryptor: ContentDecryptor) -> None:
        self._tokens = tokens
        self._decryptor = decryptor

    def check_tokens(self, tokens: Sequence[object]) -> None:
        self._tokens.check(tokens)

    def decrypt(self, content: object) -> Any:
        return self._decryptor.decrypt(content)
