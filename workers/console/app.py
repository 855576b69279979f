"""The console as a Starlette app, mounted by the web process at `/console`.

Sessions are signed cookies (FLEET_CONSOLE_SECRET); with no users and no trusted proxy header
configured nobody can sign in: the console is never open by default.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from workers.console import (
    csrf,
    dead_letters,
    events,
    graph_page,
    overview,
    records,
    schedules_page,
    workers_page,
)
from workers.console.auth import Role, User, Users
from workers.console.common import HERE, Console, blocking, operator
from workers.console.sign_in_link import LOCAL_USER, SignInLink

if TYPE_CHECKING:
    from workers.bootstrap import Runtime

log = logging.getLogger("fleet.console")
SESSION_HOURS = 12
MOUNT = "/console"  # where workers/web.py mounts the console


def _safe_next(target: str) -> str:
    """Only a path inside the console: never another site (`//evil`, `https://...`)."""
    return target if target.startswith(MOUNT) and not target.startswith("//") else f"{MOUNT}/"


def _when(value: datetime | float | None) -> str:
    """A UTC time (datetime or epoch seconds) on one line, even in a narrow column."""
    if value is None:
        return ""
    moment = datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else value
    return moment.strftime("%Y-%m-%d\u00a0%H:%M:%S")


def _ago(value: float | None) -> str:
    return "" if value is None else f"{max(0.0, time.time() - value):.0f} s ago"


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters.update(sparkline=overview.sparkline, when=_when, ago=_ago)
    return templates


def make_console(runtime: Runtime) -> Starlette:
    settings = runtime.settings
    users = Users(settings.console_users)
    link_token = settings.console_sign_in_token
    sign_in_link = SignInLink(link_token.get_secret_value() if link_token else None, settings.web_host)
    if not users and not settings.console_trusted_header and not sign_in_link:
        log.warning("console: no FLEET_CONSOLE_USERS and no trusted header; nobody can sign in")
    secret = settings.console_secret.get_secret_value() if settings.console_secret else None
    if secret is None:
        log.warning("console: FLEET_CONSOLE_SECRET unset; sessions end when this process restarts")
    console = Console(runtime, users, settings.console_trusted_header, _templates())
    console.templates.env.globals["trace_link"] = settings.trace_link

    async def login_form(request: Request) -> Response:
        context = {"next": _safe_next(request.query_params.get("next", "")), "error": None}
        return console.render(request, "login.html", context)

    async def login(request: Request) -> Response:
        form = await request.form()
        if not csrf.valid(request.session, form.get(csrf.FIELD)):
            return PlainTextResponse("missing or wrong CSRF token", status_code=403)
        name, password = str(form.get("username", "")), str(form.get("password", ""))
        user = await blocking(users.authenticate, name, password)
        target = _safe_next(str(form.get("next", "")))
        if user is None:
            await blocking(console.audit.record, actor=name[:200], role="", action="login.failed", target="")
            context = {"next": target, "error": "Wrong name or password."}
            return console.render(request, "login.html", context, status_code=401)
        request.session.clear()
        request.session.update({"user": user.name, "role": str(user.role)})
        csrf.rotate(request.session)
        await console.record(user, "login", "")
        return RedirectResponse(target, status_code=303)

    async def sign_in_once(request: Request) -> Response:
        if not sign_in_link.redeem(request.query_params.get("token", "")):
            return PlainTextResponse("this sign-in link was used already, or is wrong", status_code=403)
        request.session.clear()
        request.session.update({"user": LOCAL_USER, "role": str(Role.OPERATOR)})
        csrf.rotate(request.session)
        await console.record(User(LOCAL_USER, Role.OPERATOR), "login.link", "")
        return RedirectResponse(f"{MOUNT}/", status_code=303)

    @operator(console, needs=Role.VIEWER)
    async def logout(request: Request, user: User, form: FormData) -> Response:
        request.session.clear()
        return RedirectResponse(f"{MOUNT}/login", status_code=303)

    routes = [
        Route("/login", login_form),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/sign-in", sign_in_once),
        *overview.routes(console),
        *workers_page.routes(console),
        *events.routes(console),
        *dead_letters.routes(console),
        *schedules_page.routes(console),
        *graph_page.routes(console),
        *records.routes(console),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    session = Middleware(
        SessionMiddleware,
        secret_key=secret or secrets.token_urlsafe(32),
        session_cookie="fleet_console",
        max_age=SESSION_HOURS * 3600,
        path="/console",
        same_site="lax",
    )
    return Starlette(routes=routes, middleware=[session])
