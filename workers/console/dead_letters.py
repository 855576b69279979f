"""The dead-letters pages: failure groups, a group's letters, one letter; replay, archive, edit.

Replay goes through `engine.replay.replay`, the same path as `fleet dlq replay`; archiving sets
letters aside without deleting them. Every change is written to the audit log.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from engine.records import Filter
from engine.replay import replay
from handlers.trace_context import trace_id
from workers.console.auth import User
from workers.console.common import Console, back_to, blocking, operator, viewer

STATUSES = ("dead", "replayed", "archived")
# An edit may change what the event says, not which event it is: the ledger keys on these.
_IDENTITY = ("id", "source", "type", "specversion")
_GROUP_PAGE_LIMIT = 500


def _status(request: Request) -> str:
    status = request.query_params.get("status", "dead")
    return status if status in STATUSES else "dead"


def routes(console: Console) -> list[Route]:
    fleet = console.runtime.fleet

    @viewer(console)
    async def groups(request: Request, user: User) -> Response:
        status = _status(request)
        rows = await blocking(fleet().dead_letters.groups, Filter(status=status))
        return console.render(
            request, "dead_letters.html", {"groups": rows, "status": status, "statuses": STATUSES}
        )

    @viewer(console)
    async def group(request: Request, user: User) -> Response:
        status, fingerprint = _status(request), request.path_params["fingerprint"]
        where = Filter(fingerprint=fingerprint, status=status)
        letters = await blocking(fleet().dead_letters.find, where, _GROUP_PAGE_LIMIT)
        total = await blocking(fleet().dead_letters.count, where)
        return console.render(
            request,
            "dead_letter_group.html",
            {"fingerprint": fingerprint, "letters": letters, "total": total, "status": status},
        )

    @viewer(console)
    async def letter(request: Request, user: User) -> Response:
        row = await blocking(fleet().dead_letters.get, request.path_params["letter_id"])
        if row is None:
            return PlainTextResponse("no such dead letter", status_code=404)
        context = {"letter": row, "envelope": _pretty(row.envelope), "trace_id": _trace_id(row.envelope)}
        return console.render(request, "dead_letter.html", context)

    @operator(console)
    async def replay_letters(request: Request, user: User, form: FormData) -> Response:
        where, target, back = _selection(form)
        if where is None:
            return PlainTextResponse("choose letters or a group", status_code=400)
        report = await blocking(replay, fleet().dead_letters, fleet().publisher, where)
        detail = f"replayed {report.replayed}" + (f"; refused {report.refused}" if report.refused else "")
        await console.record(user, "dead_letters.replay", target, detail)
        refused = f", {len(report.refused)} refused" if report.refused else ""
        return back_to(request, back, f"Replayed {len(report.replayed)} letter(s){refused}.")

    @operator(console)
    async def archive_letters(request: Request, user: User, form: FormData) -> Response:
        where, target, back = _selection(form)
        if where is None:
            return PlainTextResponse("choose letters or a group", status_code=400)
        count = await blocking(fleet().dead_letters.archive, where)
        await console.record(user, "dead_letters.archive", target, f"archived {count}")
        return back_to(request, back, f"Archived {count} letter(s).")

    @operator(console)
    async def replay_edited(request: Request, user: User, form: FormData) -> Response:
        letter_id = int(request.path_params["letter_id"])
        row = await blocking(fleet().dead_letters.get, letter_id)
        if row is None or row.status != "dead":
            return PlainTextResponse("no dead letter by that id", status_code=404)
        try:
            original, edited = json.loads(row.envelope), json.loads(str(form.get("envelope", "")))
        except json.JSONDecodeError as exc:
            return _edit_refused(console, request, row, str(form.get("envelope", "")), f"not JSON: {exc}")
        if not isinstance(edited, dict):
            return _edit_refused(console, request, row, json.dumps(edited), "the envelope must be an object")
        if changed := [name for name in _IDENTITY if edited.get(name) != original.get(name)]:
            reason = f"{', '.join(changed)} may not change: they say which event this is"
            return _edit_refused(console, request, row, json.dumps(edited, indent=2), reason)
        report = await blocking(
            replay, fleet().dead_letters, fleet().publisher, Filter(ids=[letter_id]), edit=lambda _: edited
        )
        if report.refused:
            reason = report.refused[letter_id]
            return _edit_refused(console, request, row, json.dumps(edited, indent=2), reason)
        await console.record(
            user, "dead_letters.replay_edited", f"letter {letter_id}", _diff(original, edited)
        )
        return back_to(request, f"/dead-letters/{letter_id}", "Replayed with the edited payload.")

    return [
        Route("/dead-letters", groups),
        Route("/dead-letters/groups/{fingerprint}", group),
        Route("/dead-letters/{letter_id:int}", letter),
        Route("/dead-letters/replay", replay_letters, methods=["POST"]),
        Route("/dead-letters/archive", archive_letters, methods=["POST"]),
        Route("/dead-letters/{letter_id:int}/replay-edited", replay_edited, methods=["POST"]),
    ]


def _selection(form: FormData) -> tuple[Filter | None, str, str]:
    """The letters a form means (ticked ids, or a whole group), how the audit names them, and
    where to go after. Only `dead` letters are ever replayed or archived."""
    fingerprint = str(form.get("fingerprint") or "")
    back = f"/dead-letters/groups/{fingerprint}" if fingerprint else "/dead-letters"
    back = str(form.get("back") or back)
    if not back.startswith("/") or back.startswith("//"):
        back = "/dead-letters"
    ids = [int(str(value)) for value in form.getlist("ids") if str(value).isdigit()]
    if ids:
        return Filter(ids=ids), f"letters {ids}", back
    if fingerprint and form.get("whole_group") == "yes":
        return Filter(fingerprint=fingerprint), f"group {fingerprint}", back
    return None, "", back


def _pretty(envelope: str) -> str:
    try:
        return json.dumps(json.loads(envelope), indent=2, ensure_ascii=False)
    except json.JSONDecodeError:
        return envelope  # an undecodable broker message, kept as it came


def _trace_id(envelope: str) -> str | None:
    """The letter's trace id, when its envelope is a JSON object with a valid traceparent."""
    try:
        decoded = json.loads(envelope)
    except json.JSONDecodeError:
        return None
    traceparent = decoded.get("traceparent") if isinstance(decoded, dict) else None
    return trace_id(traceparent) if isinstance(traceparent, str) else None


def _diff(before: dict[str, Any], after: dict[str, Any]) -> str:
    lines = difflib.unified_diff(
        json.dumps(before, indent=2, sort_keys=True).splitlines(),
        json.dumps(after, indent=2, sort_keys=True).splitlines(),
        "before",
        "after",
        lineterm="",
    )
    return "\n".join(lines)


def _edit_refused(console: Console, request: Request, row: Any, text: str, reason: str) -> Response:
    context = {"letter": row, "envelope": text, "error": reason}
    return console.render(request, "dead_letter.html", context, status_code=400)
