"""The events pages: recent history searchable by id, correlation id, type and outcome, and one
event's timeline across its retries and follow-ups (all read from `fleet_event_history`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.records import Outcome
from infra.history import SqlHistory
from workers.console.auth import User
from workers.console.common import Console, blocking, viewer

_PAGE = 200


def routes(console: Console) -> list[Route]:
    def history() -> SqlHistory:
        return SqlHistory(console.runtime.fleet().engine)

    types = sorted(route.type for route in console.runtime.registry.routes())

    @viewer(console)
    async def search(request: Request, user: User) -> Response:
        query = {name: request.query_params.get(name, "").strip() for name in ("q", "type", "outcome")}
        entries = await blocking(
            history().search,
            text=query["q"] or None,
            event_type=query["type"] or None,
            outcome=query["outcome"] or None,
            limit=_PAGE,
        )
        context = {"entries": entries, "query": query, "types": types, "outcomes": list(Outcome)}
        return console.render(request, "events.html", context)

    @viewer(console)
    async def timeline(request: Request, user: User) -> Response:
        event_id = request.query_params.get("id", "")
        entries = await blocking(history().timeline, event_id) if event_id else []
        return console.render(request, "timeline.html", {"event_id": event_id, "entries": entries})

    return [Route("/events", search), Route("/events/timeline", timeline)]
