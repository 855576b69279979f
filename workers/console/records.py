"""Read-only pages: Graph subscriptions (expiry, last notification) and the audit log."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from infra.console.activity import graph_subscription_rows
from workers.console.auth import User
from workers.console.common import Console, blocking, viewer


def routes(console: Console) -> list[Route]:
    fleet = console.runtime.fleet

    @viewer(console)
    async def graph(request: Request, user: User) -> Response:
        rows = await blocking(graph_subscription_rows, fleet().engine)
        return console.render(request, "graph.html", {"subscriptions": rows})

    @viewer(console)
    async def audit(request: Request, user: User) -> Response:
        entries = await blocking(console.audit.recent, 200)
        return console.render(request, "audit.html", {"entries": entries})

    return [Route("/graph", graph), Route("/audit", audit)]
