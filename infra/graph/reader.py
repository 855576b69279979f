"""`GraphReader` on the SDK: users, groups, messages, events, and delta queries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kiota_abstractions.serialization import Parsable
from kiota_serialization_json.json_serialization_writer import JsonSerializationWriter
from msgraph.graph_service_client import GraphServiceClient

from handlers.graph.ports import DeltaExpired, DeltaPage
from infra.graph.client import GraphCalls
from infra.graph.errors import GraphNotFound, GraphRequestRejected


def as_json(model: Parsable | None) -> dict[str, Any]:
    """An SDK model as Graph's own JSON (field names as on the wire, extra fields kept)."""
    if model is None:
        return {}
    writer = JsonSerializationWriter()
    writer.write_object_value(None, model)
    loaded = json.loads(writer.get_serialized_content() or b"{}")
    return loaded if isinstance(loaded, dict) else {}


class SdkGraphReader:
    def __init__(self, calls: GraphCalls) -> None:
        self._calls = calls

    def get(self, kind: str, ids: Sequence[str]) -> dict[str, Any] | None:
        async def fetch(client: GraphServiceClient) -> Parsable | None:
            if kind == "user":
                return await client.users.by_user_id(ids[0]).get()
            if kind == "group":
                return await client.groups.by_group_id(ids[0]).get()
            if kind == "message":
                return await client.users.by_user_id(ids[0]).messages.by_message_id(ids[1]).get()
            if kind == "event":
                return await client.users.by_user_id(ids[0]).events.by_event_id(ids[1]).get()
            raise ValueError(f"unknown Graph resource kind {kind!r}")

        try:
            return as_json(self._calls.run(fetch))
        except GraphNotFound:
            return None

    def delta(self, resource: str, link: str | None) -> DeltaPage:
        parts = resource.strip("/").split("/")

        async def page(client: GraphServiceClient) -> Any:
            if parts == ["users"]:
                builder: Any = client.users.delta
            elif parts == ["groups"]:
                builder = client.groups.delta
            elif (
                len(parts) == 5
                and parts[0] == "users"
                and parts[2] == "mailFolders"
                and parts[4] == "messages"
            ):
                folder = client.users.by_user_id(parts[1]).mail_folders.by_mail_folder_id(parts[3])
                builder = folder.messages.delta
            else:
                raise ValueError(f"no delta query for {resource!r}")
            return await (builder.with_url(link) if link else builder).get()

        try:
            response = self._calls.run(page)
        except GraphRequestRejected as exc:
            if exc.status == 410 or exc.code.lower() in ("syncstatenotfound", "resyncrequired"):
                raise DeltaExpired(str(exc)) from exc
            raise
        items = [as_json(item) for item in (getattr(response, "value", None) or [])]
        return DeltaPage(
            items=items,
            next_link=getattr(response, "odata_next_link", None),
            delta_link=getattr(response, "odata_delta_link", None),
        )
