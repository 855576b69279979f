"""The payment provider over HTTP, in the shape of the common card APIs (Stripe's among them).

Every request carries an `Idempotency-Key` header derived from the order and the step
(`order:<id>:charge`), so a retried step, after a timeout, a crash or a redelivery, gets the
provider's first answer back instead of charging again. The provider's errors are translated
here, at the boundary: a decline is a result; a timeout, a connection failure or a 5xx is
retryable; a 429 is `RateLimited` with its Retry-After; any other 4xx is our bug, permanent.
"""

from __future__ import annotations

from typing import Any

import httpx

from handlers.errors import PermanentError, RateLimited, RetryableError
from handlers.orders.model import Charge
from infra.retry_after import parse_retry_after

DEFAULT_THROTTLE_WAIT = 1.0
"""When the provider throttles without a valid Retry-After."""


class PaymentUnavailable(RetryableError):
    """The provider did not answer in time, or answered with a server error."""


class PaymentRejected(PermanentError):
    """The provider refused the request itself (a 4xx other than a decline): retrying cannot help."""


class PaymentsNotConfigured(RetryableError):
    """`FLEET_PAYMENTS_URL` is not set: retried, then dead-lettered, replayable once it is."""


class HttpPayments:
    def __init__(self, base_url: str, *, timeout: float, client: httpx.Client | None = None) -> None:
        self._client = client or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def charge(self, *, key: str, amount: int, currency: str, card: str, reference: str) -> Charge:
        body = {"amount": amount, "currency": currency, "card": card, "reference": reference}
        response = self._post("/v1/charges", key, body)
        payload = response.json()
        if response.status_code == 402:  # declined: the provider's answer, final for this key
            error = payload.get("error", {})
            return Charge(
                succeeded=False, reason=str(error.get("code") or error.get("message") or "declined")
            )
        return Charge(succeeded=payload.get("status") == "succeeded", charge_id=payload.get("id"))

    def void(self, *, key: str, charge_key: str) -> str:
        response = self._post("/v1/voids", key, {"charge_key": charge_key})
        return str(response.json().get("outcome", "voided"))

    def close(self) -> None:
        self._client.close()

    def _post(self, path: str, key: str, body: dict[str, Any]) -> httpx.Response:
        try:
            response = self._client.post(path, json=body, headers={"Idempotency-Key": key})
        except httpx.TimeoutException as exc:
            raise PaymentUnavailable(f"payment provider timed out: {path}") from exc
        except httpx.TransportError as exc:
            raise PaymentUnavailable(f"payment provider unreachable: {exc}") from exc
        status = response.status_code
        if status == 429:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            raise RateLimited(DEFAULT_THROTTLE_WAIT if wait is None else wait, f"payment provider {status}")
        if status == 409:  # the same key is still being processed (an earlier try of ours)
            raise PaymentUnavailable(f"payment request {key} is still in progress")
        if status >= 500:
            raise PaymentUnavailable(f"payment provider answered {status}")
        if status >= 400 and status != 402:
            raise PaymentRejected(f"payment provider refused {path} ({status}): {response.text[:300]}")
        return response


class UnconfiguredPayments:
    """Wired when no provider is configured, so a fleet without orders still starts."""

    def charge(self, *, key: str, amount: int, currency: str, card: str, reference: str) -> Charge:
        raise PaymentsNotConfigured("FLEET_PAYMENTS_URL is not set")

    def void(self, *, key: str, charge_key: str) -> str:
        raise PaymentsNotConfigured("FLEET_PAYMENTS_URL is not set")
