"""HTTP plumbing shared by the ingress endpoints: bounded body reads, problem answers, metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from infra.metrics.ingress import DURATION, REQUESTS, outcome

RETRY_AFTER_SECONDS = 5


class Problem(Exception):
    """An answer other than success, as RFC 9457 problem details naming what was wrong."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        field: str | None = None,
        index: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.extra: dict[str, Any] = {
            name: value for name, value in (("field", field), ("index", index)) if value is not None
        }

    def response(self) -> Response:
        body = {"status": self.status, "detail": self.detail, **self.extra}
        return JSONResponse(
            body, status_code=self.status, headers=self.headers, media_type="application/problem+json"
        )


def broker_unavailable(exc: BaseException) -> Problem:
    return Problem(
        503,
        f"the broker is unreachable ({type(exc).__name__}); nothing was accepted, send again later",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` (declared or read)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Problem(400, "Content-Length must be a number of bytes")
        if int(declared) > limit:
            raise Problem(413, f"body of {declared} bytes is over the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


Endpoint = Callable[[Request], Awaitable[Response]]


def measured(name: str, endpoint: Endpoint) -> Endpoint:
    """Count and time every answer of `endpoint`, and turn a `Problem` into its response."""

    async def wrapper(request: Request) -> Response:
        started = time.perf_counter()
        try:
            response = await endpoint(request)
        except Problem as problem:
            response = problem.response()
        key_id = getattr(request.state, "api_key_id", "")  # set once a key authenticated it
        REQUESTS.labels(name, str(response.status_code), key_id, outcome(response.status_code)).inc()
        DURATION.labels(name).observe(time.perf_counter() - started)
        return response

    return wrapper
