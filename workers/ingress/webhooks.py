"""`POST /webhooks/{source}`: Standard Webhooks from configured systems, turned into events.

The event id is the `webhook-id`, so a sender's retries of one message are one effect; the
source is `webhooks/<source>`, the type the one configured for that source.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from handlers.contracts import check_event
from handlers.envelope import check_size, new_event
from handlers.errors import EventTooLarge, InvalidEvent, UnknownEventType
from handlers.registry import Registry
from infra.ingress.standard_webhooks import SignatureRejected, verify
from infra.ingress.webhook_sources import WebhookSource
from workers.ingress.cloudevents_http import load_json
from workers.ingress.http import Problem, read_body
from workers.ingress.publishing import GroupPublisher


@dataclass(frozen=True)
class SignedWebhooks:
    publisher: GroupPublisher
    sources: Mapping[str, WebhookSource]
    tolerance: float
    max_event_bytes: int
    registry: Registry

    async def post(self, request: Request) -> Response:
        name = request.path_params["source"]
        source = self.sources.get(name)
        if source is None:
            raise Problem(404, f"no webhook source {name!r} is configured")
        body = await read_body(request, self.max_event_bytes)
        headers = request.headers
        try:
            sent_at = verify(
                source.secrets,
                msg_id=headers.get("webhook-id"),
                timestamp=headers.get("webhook-timestamp"),
                signature=headers.get("webhook-signature"),
                body=body,
                now=time.time(),
                tolerance=self.tolerance,
            )
        except SignatureRejected as exc:
            raise Problem(401, str(exc)) from None
        data = load_json(body)  # only after the signature: unsigned input is not even parsed
        try:
            event = new_event(
                source.type,
                data,
                source=f"webhooks/{name}",
                id=headers["webhook-id"],
                time=datetime.fromtimestamp(sent_at, UTC),
            )
            check_size(event, self.max_event_bytes)
            check_event(self.registry.route_for(event.type), event)
        except EventTooLarge as exc:
            raise Problem(413, str(exc)) from None
        except InvalidEvent as exc:
            raise Problem(422, str(exc), field=exc.field) from None
        except UnknownEventType as exc:  # a source configured with a type no route takes
            raise Problem(422, str(exc), field="type") from None
        ids = await self.publisher.publish([event], "webhooks")
        return JSONResponse({"accepted": ids}, status_code=202)
