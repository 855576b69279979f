"""Graph SDK errors translated into the fleet's error tree, at the adapter boundary.

429, 503 with Retry-After   -> RateLimited(seconds)   (the fleet's retry waits exactly that)
other 5xx, timeouts, resets -> RetryableError          (ambiguous: the request may have landed)
404                         -> GraphNotFound            (callers that expect it catch it)
409                         -> GraphConflict
other 4xx                   -> GraphRequestRejected     (permanent: dead-lettered at once)
token acquisition failure   -> RetryableError           (a fixed secret or a recovered authority)
"""

from __future__ import annotations

import httpx
from azure.core.exceptions import AzureError
from kiota_abstractions.api_error import APIError

from handlers.errors import FleetError, PermanentError, RateLimited, RetryableError
from infra.retry_after import retry_after_of

DEFAULT_THROTTLE_WAIT = 10.0
"""When Graph throttles without saying how long to wait."""


class GraphRequestRejected(PermanentError):
    """Graph refused the request; trying it again as it is cannot help."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        super().__init__(f"Graph answered {status} {code}: {message}".rstrip(": "))


class GraphNotFound(GraphRequestRejected):
    """404: the resource is gone (often an expected outcome)."""


class GraphConflict(GraphRequestRejected):
    """409: e.g. the subscription exists already."""


def _code_and_message(exc: APIError) -> tuple[str, str]:
    error = getattr(exc, "error", None)  # msgraph's ODataError carries Graph's {"error": {...}}
    code = str(getattr(error, "code", "") or "")
    message = str(getattr(error, "message", "") or exc.message or "")
    return code, message


def translate(exc: BaseException) -> BaseException:  # noqa: PLR0911 - one return per row of the table above
    """The fleet error for an SDK or transport exception (others pass through unchanged)."""
    if isinstance(exc, FleetError):
        return exc
    if isinstance(exc, APIError):
        status = int(exc.response_status_code or 0)
        code, message = _code_and_message(exc)
        wait = retry_after_of(exc.response_headers)
        if (status in (429, 503) and wait is not None) or status == 429:
            return RateLimited(DEFAULT_THROTTLE_WAIT if wait is None else wait, f"Graph {status}: throttled")
        if status >= 500 or status in (408, 0):
            return RetryableError(f"Graph answered {status} {code}: {message}")
        if status == 404:
            return GraphNotFound(status, code, message)
        if status == 409:
            return GraphConflict(status, code, message)
        return GraphRequestRejected(status, code, message)
    if isinstance(exc, httpx.TransportError):
        return RetryableError(f"Graph request failed in transit ({type(exc).__name__}): {exc}")
    if isinstance(exc, AzureError):
        return RetryableError(f"Graph sign-in failed ({type(exc).__name__}): {exc}")
    return exc
