"""The stand-in's `/subscriptions`: create (with Graph's lifetime limits, and `409` for a
resource and URL subscribed already), list (without secrets, as Graph, in pages of `PAGE_SIZE`
joined by `@odata.nextLink`), renew, delete, reauthorize."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from tests.support.graph_standin.common import Reply, error, now


def max_minutes(resource: str, rich: bool) -> int:
    last = resource.strip("/").split("/")[-1].lower()
    if last in ("messages", "events", "contacts"):
        return 1440 if rich else 10080
    return 41760


PAGE_SIZE = 2
"""Small, so listing more than two subscriptions always takes a next link."""


class Subscriptions:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def serve(  # noqa: PLR0911 - a router
        self, method: str, rest: list[str], body: Any, query: dict[str, str], link: str
    ) -> Reply:
        """`link`: the collection's own URL, for next links."""
        if not rest and method == "GET":
            start = int(query.get("$skiptoken", "0"))
            listed = list(self.items.values())[start : start + PAGE_SIZE]
            page: dict[str, Any] = {"value": [{**s, "clientState": None} for s in listed]}
            if start + PAGE_SIZE < len(self.items):
                page["@odata.nextLink"] = f"{link}?$skiptoken={start + PAGE_SIZE}"
            return 200, page, {}
        if not rest and method == "POST":
            for existing in self.items.values():
                if existing["resource"] == body.get("resource") and existing["notificationUrl"] == body.get(
                    "notificationUrl"
                ):
                    return error(409, "Conflict", "A subscription for this resource already exists.")
            if problem := self._bad_expiry(body.get("resource", ""), body):
                return problem
            if body.get("includeResourceData") and not (
                body.get("encryptionCertificate") and body.get("encryptionCertificateId")
            ):
                return error(400, "InvalidRequest", "includeResourceData needs encryptionCertificate and Id.")
            created = {**body, "id": str(uuid.uuid4())}
            self.items[created["id"]] = created
            return 201, created, {}
        sub = self.items.get(rest[0]) if rest else None
        if sub is None:
            return error(404, "ResourceNotFound", "The object was not found.")
        if len(rest) == 1 and method == "PATCH":
            if problem := self._bad_expiry(sub["resource"], body, rich=bool(sub.get("includeResourceData"))):
                return problem
            sub["expirationDateTime"] = body["expirationDateTime"]
            return 200, sub, {}
        if len(rest) == 1 and method == "DELETE":
            del self.items[rest[0]]
            return 204, None, {}
        if len(rest) == 2 and rest[1] == "reauthorize" and method == "POST":
            return 204, None, {}
        return error(400, "BadRequest")

    def _bad_expiry(self, resource: str, body: dict[str, Any], rich: bool | None = None) -> Reply | None:
        raw = str(body.get("expirationDateTime", ""))
        try:
            expiry = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return error(400, "InvalidRequest", "expirationDateTime is required")
        limit = max_minutes(resource, bool(body.get("includeResourceData")) if rich is None else rich)
        if expiry <= now() or expiry > now() + timedelta(minutes=limit):
            return error(
                400, "InvalidRequest", f"Subscription expiration can only be {limit} minutes in the future."
            )
        return None
