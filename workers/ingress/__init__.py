"""HTTP ingress of the web process: the events API, Graph webhooks, Standard Webhooks, OpenAPI."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from workers.asyncapi import asyncapi_document
from workers.ingress.events import EventsApi
from workers.ingress.graph import GraphWebhook, RichUnavailable, handshake
from workers.ingress.http import measured
from workers.ingress.openapi import openapi_document
from workers.ingress.ports import RichNotifications
from workers.ingress.publishing import GroupPublisher
from workers.ingress.webhooks import SignedWebhooks

if TYPE_CHECKING:
    from workers.bootstrap import Runtime

log = logging.getLogger("fleet.ingress")


def ingress_routes(runtime: Runtime) -> list[BaseRoute]:
    """The routes; adapters come from the runtime's `Fleet` on first request (after any fork)."""
    settings = runtime.settings
    groups: list[GroupPublisher] = []

    def publisher() -> GroupPublisher:
        # One per process, built on first request: the fleet's publisher holds broker connections.
        if not groups:
            fleet = runtime.fleet()
            groups.append(GroupPublisher(fleet.loop_publisher, sending=fleet.producer.publisher.sending))
        return groups[0]

    def events() -> EventsApi:
        fleet = runtime.fleet()
        return EventsApi(
            registry=runtime.registry,
            publisher=publisher(),
            api_keys=fleet.ingress.api_keys,
            max_event_bytes=settings.max_event_bytes,
            max_body_bytes=settings.ingress_max_body_bytes,
            check_data=settings.check_data,
        )

    def rich() -> RichNotifications | None:
        try:
            return runtime.fleet().ingress.graph_rich_notifications
        except (OSError, ValueError) as exc:  # tried again on the next request: a fixed file is used
            log.error("rich Graph notifications are refused until this is fixed: %s", exc)
            return RichUnavailable(str(exc))

    def graph() -> GraphWebhook:
        fleet = runtime.fleet()
        return GraphWebhook(
            publisher=publisher(),
            secrets=fleet.ingress.subscription_secrets,
            rich=rich(),
            max_body_bytes=settings.ingress_max_body_bytes,
            max_event_bytes=settings.max_event_bytes,
        )

    def webhooks() -> SignedWebhooks:
        return SignedWebhooks(
            publisher=publisher(),
            sources=settings.webhook_sources,
            tolerance=settings.webhook_tolerance,
            max_event_bytes=settings.max_event_bytes,
            registry=runtime.registry,
        )

    document = openapi_document(runtime.registry.routes())
    events_document = asyncapi_document(runtime.registry.routes(), settings)

    async def post_events(request: Request) -> Response:
        return await events().post(request)

    async def post_graph(request: Request) -> Response:
        if "validationToken" in request.query_params:  # answered before anything is built
            return handshake(request.query_params["validationToken"])
        return await graph().post(request)

    async def post_webhook(request: Request) -> Response:
        return await webhooks().post(request)

    async def openapi(_: Request) -> Response:
        return JSONResponse(document)

    async def asyncapi(_: Request) -> Response:
        return JSONResponse(events_document)

    return [
        Route("/events", measured("events", post_events), methods=["POST"]),
        Route("/graph/notifications", measured("graph_notifications", post_graph), methods=["POST"]),
        Route("/graph/lifecycle", measured("graph_lifecycle", post_graph), methods=["POST"]),
        Route("/webhooks/{source}", measured("webhooks", post_webhook), methods=["POST"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/asyncapi.json", asyncapi, methods=["GET"]),
    ]
