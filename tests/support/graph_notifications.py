"""A local stand-in for what Microsoft Graph and Entra ID send a webhook: notification items,
rich notifications encrypted as Graph encrypts them, and validation tokens signed by keys
published as a JWKS file."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import NameOID

GRAPH_APP = "0bf30f3b-4a52-48df-9a82-234910c4a086"


def certificate(directory: Path) -> tuple[Path, bytes]:
    """A self-signed certificate with its key, in one PEM file (as FLEET_GRAPH_CERTIFICATE_PATH)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleet-tests")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = directory / "graph-notifications.pem"
    path.write_bytes(key_pem + cert_pem)
    return path, cert_pem


def encrypt(cert_pem: bytes, certificate_id: str, resource: Any) -> dict[str, str]:
    """`encryptedContent` as Graph builds it for a resource."""
    symmetric_key = os.urandom(32)
    public_key = x509.load_pem_x509_certificate(cert_pem).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(json.dumps(resource).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(symmetric_key), modes.CBC(symmetric_key[:16])).encryptor()
    data = encryptor.update(padded) + encryptor.finalize()
    wrapped = public_key.encrypt(
        symmetric_key, OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    )
    signature = hmac.new(symmetric_key, data, hashlib.sha256).digest()
    return {
        "data": base64.b64encode(data).decode(),
        "dataSignature": base64.b64encode(signature).decode(),
        "dataKey": base64.b64encode(wrapped).decode(),
        "encryptionCertificateId": certificate_id,
        "encryptionCertificateThumbprint": "00",
    }


class TokenIssuer:
    """Signs validation tokens as Entra ID does; its keys are published as a JWKS file."""

    def __init__(self, directory: Path, tenant: str, app_id: str) -> None:
        self.tenant = tenant
        self.app_id = app_id
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "fleet-test-key"
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        self.jwks_path = directory / "jwks.json"
        self.jwks_path.write_text(
            json.dumps({"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]})
        )

    @contextlib.contextmanager
    def serving_keys(self) -> Iterator[str]:
        """Publish the JWKS over HTTP on loopback, as Entra ID's discovery endpoint does; yields its URL."""
        body = self.jwks_path.read_bytes()

        class Keys(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/discovery/v2.0/keys"
        finally:
            server.shutdown()
            server.server_close()

    def token(
        self,
        *,
        audience: str | None = None,
        expires_in: float = 3600,
        issued_to: str = GRAPH_APP,
        version: str = "1.0",
        tenant: str | None = None,
    ) -> str:
        """A validation token as Entra ID issues it: v1.0 (issuer sts.windows.net, the app it was
        issued to in `appid`) or v2.0 (issuer login.microsoftonline.com/<tenant>/v2.0, in `azp`)."""
        now = int(time.time())
        tid = tenant or self.tenant
        claims: dict[str, Any] = {
            "aud": audience or self.app_id,
            "iat": now,
            "nbf": now,
            "exp": now + int(expires_in),
            "tid": tid,
            "ver": version,
        }
        if version == "2.0":
            claims |= {"iss": f"https://login.microsoftonline.com/{tid}/v2.0", "azp": issued_to}
        else:
            claims |= {"iss": f"https://sts.windows.net/{tid}/", "appid": issued_to}
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    def foreign_token(self) -> str:
        """Right claims, signed by a key that is not in the JWKS."""
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = int(time.time())
        claims = {
            "aud": self.app_id,
            "iss": f"https://sts.windows.net/{self.tenant}/",
            "exp": now + 3600,
            "azp": GRAPH_APP,
        }
        return jwt.encode(claims, other, algorithm="RS256", headers={"kid": self.kid})


def change(subscription_id: str, client_state: str, resource_id: str, **extra: Any) -> dict[str, Any]:
    """One change notification item as Graph sends it."""
    return {
        "subscriptionId": subscription_id,
        "subscriptionExpirationDateTime": "2030-01-01T00:00:00+00:00",
        "changeType": "updated",
        "resource": f"Users/{resource_id}",
        "resourceData": {"@odata.type": "#Microsoft.Graph.User", "id": resource_id},
        "clientState": client_state,
        "tenantId": "tenant-1",
        **extra,
    }


def lifecycle(subscription_id: str, client_state: str, event: str) -> dict[str, Any]:
    return {
        "subscriptionId": subscription_id,
        "subscriptionExpirationDateTime": "2030-01-01T00:00:00+00:00",
        "lifecycleEvent": event,
        "clientState": client_state,
        "tenantId": "tenant-1",
    }
