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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

GRAPH_CHANGE_TRACKING_APP_ID = "0bf30f3b-4a52-48df-9a82-234910c4a086"
"""The `azp` of every validation token Graph sends (Microsoft's change-tracking application)."""

# Graph wraps the data key with RSA-OAEP over SHA-1: its choice, not ours; OAEP's security does
# not rest on SHA-1's collision resistance.
GRAPH_KEY_PADDING = OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303


class NotificationRejected(Exception):
    """A rich notification or its tokens did not verify; the message says why."""


@dataclass(frozen=True)
class TokenPolicy:
    """What a validation token must say: our app as audience, our tenant as issuer."""

    jwks_url: str
    app_id: str
    tenant_id: str
    issuer: str | None = None
    publisher_app_id: str = GRAPH_CHANGE_TRACKING_APP_ID

    @property
    def expected_issuer(self) -> str:
        return self.issuer or f"https://sts.windows.net/{self.tenant_id}/"


class ValidationTokens:
    """Checks a collection's `validationTokens` against the signing keys at `jwks_url`."""

    def __init__(self, policy: TokenPolicy) -> None:
        self._policy = policy
        # Keys are cached for an hour; a fetch may take at most 2 s of Graph's 3-second budget.
        self._keys = jwt.PyJWKClient(policy.jwks_url, cache_keys=True, lifespan=3600, timeout=2)

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
                    issuer=self._policy.expected_issuer,
                    options={"require": ["exp", "aud", "iss"]},
                )
            except jwt.PyJWTError as exc:
                raise NotificationRejected(f"validation token: {exc}") from None
            if claims.get("azp", claims.get("appid")) != self._policy.publisher_app_id:
                raise NotificationRejected("validation token was not issued to Microsoft Graph")


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
