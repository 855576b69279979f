"""Verification pieces of the ingress without I/O: Standard Webhooks signatures, Graph rich
notifications, notification ids, and the CloudEvents HTTP modes (validation tokens, which need
their keys served, are in tests/integration/test_ingress_graph.py)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from infra.ingress.graph_crypto import ContentDecryptor, NotificationRejected
from infra.ingress.standard_webhooks import SignatureRejected, sign, verify
from tests.support import graph_notifications as graph
from workers.ingress.cloudevents_http import parse_request
from workers.ingress.graph import notification_id
from workers.ingress.http import Problem

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()


def _verify(secrets: list[str], signature: str, timestamp: int, body: bytes = b'{"a":1}') -> int:
    return verify(
        secrets, msg_id="msg-1", timestamp=str(timestamp), signature=signature, body=body,
        now=time.time(), tolerance=300,
    )  # fmt: skip


def test_standard_webhook_signature_verifies_with_any_configured_secret() -> None:
    now = int(time.time())
    signature = sign(OLD_SECRET, "msg-1", now, b'{"a":1}')
    assert _verify([SECRET, OLD_SECRET], f"v1,bogus {signature}", now) == now
    with pytest.raises(SignatureRejected, match="no webhook-signature matches"):
        _verify([SECRET], signature, now)


def test_standard_webhook_refuses_altered_body_and_old_timestamp() -> None:
    now = int(time.time())
    with pytest.raises(SignatureRejected, match="matches"):
        _verify([SECRET], sign(SECRET, "msg-1", now, b'{"a":1}'), now, body=b'{"a":2}')
    old = now - 301
    with pytest.raises(SignatureRejected, match="more than 300s from now"):
        _verify([SECRET], sign(SECRET, "msg-1", old, b'{"a":1}'), old)


def test_rich_notification_decrypts_and_a_tampered_one_is_refused(tmp_path: Path) -> None:
    pem_path, cert_pem = graph.certificate(tmp_path)
    decryptor = ContentDecryptor(pem_path.read_bytes(), "cert-1")
    content = graph.encrypt(cert_pem, "cert-1", {"id": "u-1", "displayName": "Ada"})
    assert decryptor.decrypt(content) == {"id": "u-1", "displayName": "Ada"}

    data = bytearray(base64.b64decode(content["data"]))
    data[0] ^= 1
    tampered = {**content, "data": base64.b64encode(bytes(data)).decode()}
    with pytest.raises(NotificationRejected, match="altered"):
        decryptor.decrypt(tampered)
    with pytest.raises(NotificationRejected, match="another certificate"):
        decryptor.decrypt({**content, "encryptionCertificateId": "cert-2"})


def test_notification_id_is_the_same_for_a_redelivery_and_ignores_client_state() -> None:
    item = graph.change("sub-1", "secret", "u-1")
    assert notification_id(item) == notification_id(json.loads(json.dumps(item)))
    assert notification_id(item) == notification_id({**item, "clientState": "other"})
    assert notification_id(item) != notification_id(graph.change("sub-1", "secret", "u-2"))
    assert notification_id(item).startswith("gn-") and len(notification_id(item)) == 35


def test_notification_ids_do_not_change_between_releases() -> None:
    """A notification Graph redelivers across an upgrade must get the id it had before."""
    item = {
        "subscriptionId": "sub-1",
        "changeType": "updated",
        "resource": "Users/\u00fc-1",
        "resourceData": {"id": "\u00fc-1", "n": 1.5},
        "clientState": "x",
        "tenantId": "t",
    }
    assert notification_id(item) == "gn-25141e848662c1bcd5508a4c408808fa"


def _problem(headers: dict[str, str], media_type: str, body: bytes) -> Problem:
    with pytest.raises(Problem) as caught:
        parse_request(headers, media_type, body, 1024)
    return caught.value


def test_cloudevents_modes_and_their_errors() -> None:
    event = {"specversion": "1.0", "id": "e-1", "source": "s", "type": "demo.deposit_recorded", "data": {}}
    structured = parse_request({}, "application/cloudevents+json", json.dumps(event).encode(), 1024)
    assert structured[0].id == "e-1"
    batch = parse_request({}, "application/cloudevents-batch+json", json.dumps([event, event]).encode(), 1024)
    assert len(batch) == 2
    headers = {"ce-specversion": "1.0", "ce-id": "b%20-1", "ce-source": "s", "ce-type": "demo.x",
               "content-type": "application/json"}  # fmt: skip
    binary = parse_request(headers, "application/json", b'{"amount": 1}', 1024)
    assert (binary[0].id, binary[0].data) == ("b -1", {"amount": 1})

    assert _problem({}, "application/cloudevents+json", b"{nope").status == 400
    assert _problem({}, "application/json", b"{}").status == 415
    missing = _problem({}, "application/cloudevents+json", json.dumps({**event, "id": ""}).encode())
    assert (missing.status, missing.extra["field"]) == (422, "id")
    second = _problem({}, "application/cloudevents-batch+json", json.dumps([event, {"id": 1}]).encode())
    assert (second.status, second.extra["index"]) == (422, 1)
    big = {**event, "data": {"blob": "x" * 2000}}
    assert _problem({}, "application/cloudevents+json", json.dumps(big).encode()).status == 413
    assert _problem({}, "application/cloudevents+json", b'{"id": NaN}').status == 400
    assert _problem({**headers, "content-type": "image/png"}, "image/png", b"\x89PNG").status == 415
