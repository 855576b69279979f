"""A Microsoft Graph v1.0 stand-in: the shapes the fleet uses, over real HTTP.

Users, groups, messages and events; drafts, send, Sent Items and lookups by internet-header
extended property; subscriptions with Graph's lifetime rules and `409`; delta queries with
next/delta links, `@removed` and `410`; and faults a test injects: `429` + `Retry-After`, `503`,
or an effect that happens and then a `504` or a dropped connection (the ambiguous failure).
Every request must carry a bearer token the token stand-in issued.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.graph_standin.common import Reply, error, now
from tests.support.graph_standin.subscriptions import Subscriptions

PAGE_SIZE = 2  # small, so delta queries always follow a nextLink
_KEY_FILTER = re.compile(r"ep/id eq '(?:String \{[^}]+\} Name )?([^']+)' and ep/value eq '([^']*)'")


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    mode: str  # "before" (answer `status` instead) or "after" (do it, then answer `status` / drop)
    status: int
    times: int
    retry_after: float | str | None = None


class GraphStandIn:
    def __init__(self, accept_token: Callable[[str], bool]) -> None:
        self.accept_token = accept_token
        self.users: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.folders: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}  # (mailbox, folder) -> messages
        self.events: dict[tuple[str, str], dict[str, Any]] = {}
        self.subscription_api = Subscriptions()
        self.subscriptions = self.subscription_api.items
        self.requests: list[tuple[str, str, int]] = []
        self._changes: list[tuple[int, str, str]] = []  # (seq, collection, item id)
        self._seq = 0
        self._expired_before = 0  # delta tokens below this answer 410
        self._faults: list[Fault] = []
        self._snapshots: dict[str, list[str]] = {}
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1.0"

    def start(self) -> GraphStandIn:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- what tests do to the directory and mailboxes -------------------------------------------
    def _changed(self, collection: str, item_id: str) -> None:
        self._seq += 1
        self._changes.append((self._seq, collection, item_id))

    def put_user(self, user: dict[str, Any]) -> None:
        with self._lock:
            self.users[user["id"]] = {"@odata.type": "#microsoft.graph.user", **user}
            self._changed("users", user["id"])

    def delete_user(self, user_id: str) -> None:
        with self._lock:
            self.users.pop(user_id, None)
            self._changed("users", user_id)

    def put_group(self, group: dict[str, Any]) -> None:
        with self._lock:
            self.groups[group["id"]] = {"@odata.type": "#microsoft.graph.group", **group}
            self._changed("groups", group["id"])

    def deliver(self, mailbox: str, message: dict[str, Any], folder: str = "inbox") -> None:
        with self._lock:
            self.folders.setdefault((mailbox, folder), {})[message["id"]] = message
            self._changed(f"users/{mailbox}/mailFolders/{folder}/messages", message["id"])

    def folder(self, mailbox: str, folder: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.folders.get((mailbox, folder), {}).values())

    def expire_delta_tokens(self) -> None:
        with self._lock:
            self._expired_before = self._seq + 1

    def inject(
        self,
        method: str,
        path: str,
        *,
        status: int,
        times: int = 1,
        after: bool = False,
        retry_after: float | str | None = None,
    ) -> None:
        """The next `times` requests matching make Graph answer `status` (0 with `after`: drop the
        connection) before doing anything, or, `after`, once the effect is done."""
        with self._lock:
            mode = "after" if after else "before"
            self._faults.append(Fault(method, re.compile(path), mode, status, times, retry_after))

    def count(self, method: str, path: str) -> int:
        pattern = re.compile(path)
        with self._lock:
            return sum(1 for m, p, _ in self.requests if m == method and pattern.search(p))

    # -- serving -------------------------------------------------------------------------------
    def _fault_for(self, method: str, path: str, mode: str) -> Fault | None:
        for fault in self._faults:
            if fault.times > 0 and fault.mode == mode and fault.method == method and fault.path.search(path):
                fault.times -= 1
                return fault
        return None

    def serve(self, method: str, target: str, token: str | None, body: Any) -> Reply | None:
        """The reply to one request; None means drop the connection without answering."""
        split = urlsplit(target)
        path = unquote(split.path).removeprefix("/v1.0")
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        with self._lock:
            if token is None or not self.accept_token(token):
                reply = error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
            elif before := self._fault_for(method, path, "before"):
                wait = before.retry_after
                extra = (
                    {"Retry-After": wait if isinstance(wait, str) else f"{wait:g}"}
                    if wait is not None
                    else {}
                )
                reply = error(
                    before.status,
                    "TooManyRequests" if before.status == 429 else "ServiceUnavailable",
                    headers=extra,
                )
            else:
                reply = self._route(method, path, query, body)
                after = self._fault_for(method, path, "after") if reply[0] < 400 else None
                if after is not None:
                    self.requests.append((method, path, after.status))
                    return None if after.status == 0 else error(after.status, "GatewayTimeout")
            self.requests.append((method, path, reply[0]))
            return reply

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:  # noqa: PLR0911 - a router
        parts = [p for p in path.split("/") if p]
        if parts and parts[-1] in ("delta()", "delta") and method == "GET":
            return self._delta("/".join(parts[:-1]), path, query)
        if parts[:1] == ["subscriptions"]:
            return self.subscription_api.serve(method, parts[1:], body, query, f"{self.url}/subscriptions")
        if parts[:1] == ["groups"] and len(parts) == 2 and method == "GET":
            group = self.groups.get(parts[1])
            return (200, group, {}) if group else error(404, "Request_ResourceNotFound")
        if parts[:1] != ["users"] or len(parts) < 2:
            return error(400, "BadRequest", f"the stand-in does not serve {method} {path}")
        user, rest = parts[1], parts[2:]
        if not rest and method == "GET":
            found = self.users.get(user)
            return (200, found, {}) if found else error(404, "Request_ResourceNotFound")
        if rest[:1] == ["events"] and len(rest) == 2 and method == "GET":
            event = self.events.get((user, rest[1]))
            return (200, event, {}) if event else error(404, "ErrorItemNotFound")
        if rest[:1] == ["messages"]:
            return self._messages(method, user, rest[1:], body)
        if rest[:1] == ["mailFolders"] and len(rest) == 3 and rest[2] == "messages" and method == "GET":
            return self._find_in_folder(user, rest[1].lower(), query)
        return error(400, "BadRequest", f"the stand-in does not serve {method} {path}")

    def _message(self, user: str, message_id: str) -> tuple[str, dict[str, Any]] | None:
        for (mailbox, folder), messages in self.folders.items():
            if mailbox == user and message_id in messages:
                return folder, messages[message_id]
        return None

    def _messages(self, method: str, user: str, rest: list[str], body: Any) -> Reply:
        if not rest and method == "POST":  # a new draft
            draft = {
                **{k: v for k, v in body.items() if k != "attachments"},
                "id": f"draft-{uuid.uuid4().hex[:12]}",
                "isDraft": True,
                "hasAttachments": bool(body.get("attachments")),
                "attachmentNames": [a.get("name") for a in body.get("attachments") or []],
                "createdDateTime": now().isoformat().replace("+00:00", "Z"),
            }
            self.folders.setdefault((user, "drafts"), {})[draft["id"]] = draft
            return 201, draft, {}
        found = self._message(user, rest[0]) if rest else None
        if len(rest) == 1 and method == "GET":
            return (200, found[1], {}) if found else error(404, "ErrorItemNotFound")
        if len(rest) == 2 and rest[1] == "send" and method == "POST":
            if found is None or found[0] != "drafts":
                return error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
            draft = self.folders[(user, "drafts")].pop(rest[0])
            sent = {
                **draft,
                "id": f"sent-{uuid.uuid4().hex[:12]}",
                "isDraft": False,
                "sentDateTime": now().isoformat().replace("+00:00", "Z"),
            }
            self.folders.setdefault((user, "sentitems"), {})[sent["id"]] = sent
            return 202, None, {}
        return error(400, "BadRequest")

    def _find_in_folder(self, user: str, folder: str, query: dict[str, str]) -> Reply:
        messages = list(self.folders.get((user, folder), {}).values())
        if match := _KEY_FILTER.search(query.get("$filter", "")):
            name, value = match.group(1).lower(), match.group(2)
            messages = [
                m
                for m in messages
                if any(
                    h.get("name", "").lower() == name and h.get("value") == value
                    for h in m.get("internetMessageHeaders") or []
                )
            ]
        return 200, {"value": messages}, {}

    # -- delta ---------------------------------------------------------------------------------
    def _collection(self, collection: str) -> dict[str, dict[str, Any]]:
        if collection == "users":
            return self.users
        if collection == "groups":
            return self.groups
        parts = collection.split("/")
        return self.folders.get((parts[1], parts[3].lower()), {})

    def _delta(self, collection: str, path: str, query: dict[str, str]) -> Reply:
        parts = collection.split("/")
        if len(parts) == 5:
            collection = f"users/{parts[1]}/mailFolders/{parts[3].lower()}/messages"
        items = self._collection(collection)
        link = f"{self.url}{path}"
        if token := query.get("$deltatoken"):
            since = int(token)
            if since < self._expired_before:
                return error(410, "syncStateNotFound", "The sync state generation is not found.")
            changed = sorted({i for seq, c, i in self._changes if c == collection and seq > since})
            ids, start = changed, 0
            snapshot = f"d{since}"
        elif skip := query.get("$skiptoken"):
            snapshot, _, offset = skip.partition(":")
            ids, start = self._snapshots[snapshot], int(offset)
        else:
            snapshot = f"s{uuid.uuid4().hex[:8]}"
            ids, start = sorted(items), 0
        self._snapshots[snapshot] = ids
        page = [
            items.get(i) or {"id": i, "@removed": {"reason": "deleted"}}
            for i in ids[start : start + PAGE_SIZE]
        ]
        body: dict[str, Any] = {"value": page}
        if start + PAGE_SIZE < len(ids):
            body["@odata.nextLink"] = f"{link}?$skiptoken={snapshot}:{start + PAGE_SIZE}"
        else:
            body["@odata.deltaLink"] = f"{link}?$deltatoken={self._seq}"
        return 200, body, {}


def _handler_for(standin: GraphStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length", "0") or 0)
            raw = self.rfile.read(length) if length else b""
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
            reply = standin.serve(self.command, self.path, token, json.loads(raw) if raw else {})
            if reply is None:  # the ambiguous failure: it happened, and the answer never comes
                self.close_connection = True
                return
            status, body, headers = reply
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _handle

    return Handler
