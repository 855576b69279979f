"""The Graph subscriptions page: resource, expiry, last notification; renew one subscription now,
through the Graph adapter `fleet graph renew` uses (its SDK is loaded on the first renewal)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from handlers.errors import FleetError
from infra.console.activity import graph_subscription_rows
from workers.console.auth import User
from workers.console.common import Console, back_to, blocking, operator, viewer

if TYPE_CHECKING:
    from workers.bootstrap import Runtime

# The Graph adapter runs the SDK on one event loop per process, which two threads may not drive
# at once: renewals from the console (its thread pool) take turns.
_one_at_a_time = threading.Lock()


def renew_one(runtime: Runtime, subscription_id: str) -> str:
    """Renew one stored subscription to its maximum lifetime, as `fleet graph renew <id>` does;
    what happened, in words for the page and the audit log."""
    graph = runtime.fleet().domains.graph
    with _one_at_a_time:
        try:
            renewed = graph.subscriptions.renew(subscription_id)
        except (FleetError, ValueError) as exc:  # Graph's errors (translated), or its settings missing
            return f"not renewed: {type(exc).__name__}: {exc}"
    if renewed is None:
        return "gone from Graph (marked removed; the renewal job re-creates it)"
    return f"renewed: expires {renewed.expires_at.isoformat(timespec='seconds')}"


def routes(console: Console) -> list[Route]:
    runtime = console.runtime

    @viewer(console)
    async def graph_page(request: Request, user: User) -> Response:
        rows = await blocking(graph_subscription_rows, runtime.fleet().engine)
        return console.render(request, "graph.html", {"subscriptions": rows})

    @operator(console)
    async def renew(request: Request, user: User, form: FormData) -> Response:
        subscription_id = str(form.get("id", ""))
        stored = runtime.fleet().domains.graph.stored_subscriptions  # the database alone: no SDK, no call
        if not subscription_id or await blocking(stored.find, subscription_id) is None:
            return PlainTextResponse(f"no stored subscription {subscription_id!r}", status_code=404)
        outcome = await blocking(renew_one, runtime, subscription_id)
        await console.record(user, "graph.renew", subscription_id, outcome)
        return back_to(request, "/graph", f"{subscription_id}: {outcome}")

    return [Route("/graph", graph_page), Route("/graph/renew", renew, methods=["POST"])]
