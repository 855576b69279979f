"""`POST /events`: CloudEvents from other systems, authenticated by API key, answered once durable."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from handlers.contracts import check_event
from handlers.envelope import Event
from handlers.errors import InvalidEvent, UnknownEventType
from handlers.registry import Registry
from workers.ingress.cloudevents_http import BATCH, parse_request
from workers.ingress.http import Problem, media_type, read_body
from workers.ingress.ports import ApiKeyHolder, ApiKeys
from workers.ingress.publishing import GroupPublisher


@dataclass(frozen=True)
class EventsApi:
    registry: Registry
    publisher: GroupPublisher
    api_keys: ApiKeys
    max_event_bytes: int
    max_body_bytes: int
    check_data: bool = True

    async def post(self, request: Request) -> Response:
        key = await self._authenticate(request)
        kind = media_type(request)
        # A single event is held to the event limit while it is read, a batch to the body limit.
        limit = self.max_body_bytes if kind == BATCH else self.max_event_bytes
        body = await read_body(request, limit)
        events = parse_request(request.headers, kind, body, self.max_event_bytes)
        self._check_routes_and_rights(events, key)
        ids = await self.publisher.publish(events, "events")
        return JSONResponse({"accepted": ids}, status_code=202)

    async def _authenticate(self, request: Request) -> ApiKeyHolder:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        challenge = {"WWW-Authenticate": 'Bearer realm="fleet"'}
        if scheme.lower() != "bearer" or not token:
            raise Problem(401, "an API key is required: Authorization: Bearer <key>", headers=challenge)
        # A key in memory is decided here: a hop to a worker thread would cost more than the check.
        decided, key = self.api_keys.authenticate_cached(token)
        if not decided:
            key = await run_in_threadpool(self.api_keys.authenticate, token)
        if key is None:
            raise Problem(401, "the API key is unknown or revoked", headers=challenge)
        request.state.api_key_id = key.id  # counted by key (workers/ingress/http.py `measured`)
        return key

    def _check_routes_and_rights(self, events: list[Event], key: ApiKeyHolder) -> None:
        for index, event in enumerate(events):
            where = index if len(events) > 1 else None
            prefix = "" if where is None else f"event {where}: "
            try:
                route = self.registry.route_for(event.type)
            except UnknownEventType as exc:
                raise Problem(422, prefix + str(exc), field="type", index=where) from None
            try:
                if self.check_data:
                    check_event(route, event)
            except InvalidEvent as exc:
                raise Problem(422, prefix + str(exc), field=exc.field, index=where) from None
            if not key.may_publish(event.type):
                raise Problem(
                    403, f"API key {key.id} may not publish events of type {event.type!r}", index=where
                )
