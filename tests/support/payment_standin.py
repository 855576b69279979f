"""A stand-in payment provider speaking HTTP and JSON the way card APIs do, for the order tests.

    POST /v1/charges  Idempotency-Key: K  {"amount", "currency", "card", "reference"}
        200 {"id": "ch_…", "status": "succeeded"} | 402 {"error": {"code": "card_declined"}}
    POST /v1/voids    Idempotency-Key: K  {"charge_key": K0}
        200 {"outcome": "refunded" | "nothing_to_void" | "blocked"}

Idempotency as real providers keep it: the first answer to a key is stored and replayed to
every later request with that key (`Idempotent-Replayed: true`); the same key with another body
is refused (422); a key still being processed answers 409. A void of a charge key that has not
arrived yet blocks it: a later charge with that key is declined (`voided`).

Faults: cards starting `tok_decline` are declined; `tok_hang` cards are charged but every answer
comes too late; with `timeout_rate`, that share of keys (chosen by hash, so reruns agree) get
their first answer too late: charged, but the client never hears it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ChargeRecord:
    key: str
    reference: str
    amount: int
    card: str
    succeeded: bool
    charge_id: str | None
    refunded: bool = False


class PaymentStandIn:
    def __init__(self, *, timeout_rate: float = 0.0, hang: float = 2.0) -> None:
        self.timeout_rate = timeout_rate
        self.hang = hang
        """Seconds a late answer waits: more than the client's timeout."""
        self.charges: dict[str, ChargeRecord] = {}
        self.requests: Counter[str] = Counter()
        self.late_answers = 0
        self.throttles: list[str | None] = []
        """Each request takes the first: a 429 with it as Retry-After (None: without one)."""
        self._answers: dict[str, tuple[str, int, dict[str, Any]]] = {}  # key: (body digest, status, body)
        self._in_flight: set[str] = set()
        self._blocked: set[str] = set()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> PaymentStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def charged(self) -> Counter[str]:
        """Charges that moved money and were not refunded, by order reference."""
        with self._lock:
            return Counter(c.reference for c in self.charges.values() if c.succeeded and not c.refunded)

    def answer(self, path: str, key: str | None, body: dict[str, Any]) -> tuple[int, dict[str, Any], bool]:
        """(status, body, late): the provider's answer and whether it comes too late."""
        if not key:
            return 400, {"error": {"code": "idempotency_key_required"}}, False
        digest = hashlib.sha256(json.dumps([path, body], sort_keys=True).encode()).hexdigest()
        with self._lock:
            self.requests[key] += 1
            if key in self._answers:
                seen_digest, status, stored = self._answers[key]
                if seen_digest != digest:
                    return 422, {"error": {"code": "idempotency_key_reused_with_other_request"}}, False
                return status, {**stored, "replayed": True}, self._always_late(body)
            if key in self._in_flight:
                return 409, {"error": {"code": "request_in_progress"}}, False
            self._in_flight.add(key)
        try:
            status, answer = self._charge(key, body) if path == "/v1/charges" else self._void(body)
            with self._lock:
                self._answers[key] = (digest, status, answer)
        finally:
            with self._lock:
                self._in_flight.discard(key)
        return status, answer, self._always_late(body) or self._late_once(key)

    def _charge(self, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        card, reference = str(body.get("card", "")), str(body.get("reference", ""))
        with self._lock:
            declined = (
                "voided"
                if key in self._blocked
                else "card_declined"
                if card.startswith("tok_decline")
                else None
            )
            charge_id = None if declined else f"ch_{len(self.charges) + 1:06d}"
            self.charges[key] = ChargeRecord(
                key, reference, int(body["amount"]), card, not declined, charge_id
            )
        if declined:
            return 402, {"error": {"type": "card_error", "code": declined}}
        return 200, {"id": charge_id, "status": "succeeded", "amount": body["amount"]}

    def _void(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        charge_key = str(body.get("charge_key", ""))
        with self._lock:
            charge = self.charges.get(charge_key)
            if charge is None:
                self._blocked.add(charge_key)
                return 200, {"outcome": "blocked"}
            if charge.succeeded and not charge.refunded:
                charge.refunded = True
                return 200, {"outcome": "refunded"}
            return 200, {"outcome": "nothing_to_void"}

    def _always_late(self, body: dict[str, Any]) -> bool:
        return str(body.get("card", "")) == "tok_hang"

    def _late_once(self, key: str) -> bool:
        share = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        return share < self.timeout_rate


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client killed mid-request is expected
            super().handle_error(request, client_address)


def _handler_for(standin: PaymentStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                self._send(400, {"error": {"code": "malformed_json"}})
                return
            if self.path not in ("/v1/charges", "/v1/voids"):
                self._send(404, {"error": {"code": "not_found"}})
                return
            with standin._lock:
                throttled = standin.throttles.pop(0) if standin.throttles else False
            if throttled is not False:
                extra = {} if throttled is None else {"Retry-After": throttled}
                self._send(429, {"error": {"code": "rate_limited"}}, headers=extra)
                return
            status, answer, late = standin.answer(self.path, self.headers.get("Idempotency-Key"), body)
            if late:
                with standin._lock:
                    standin.late_answers += 1
                time.sleep(standin.hang)
            self._send(status, answer, replayed=bool(answer.pop("replayed", False)))

        def _send(
            self,
            status: int,
            body: dict[str, Any],
            replayed: bool = False,
            headers: dict[str, str] | None = None,
        ) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if replayed:
                self.send_header("Idempotent-Replayed", "true")
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler
