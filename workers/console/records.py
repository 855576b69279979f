"""The audit log page: who changed what, and when."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from workers.console.auth import User
from workers.console.common import Console, blocking, viewer


def routes(console: Console) -> list[Route]:
    @viewer(console)
    async def audit(request: Request, user: User) -> Response:
        entries = await blocking(console.audit.recent, 200)
        return console.render(request, "audit.html", {"entries": entries})

    return [Route("/audit", audit)]
