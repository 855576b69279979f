"""What every console view shares: the console's parts, access control, rendering, the audit trail.

Views are async; whatever blocks (database, broker) runs in the thread pool through `blocking`.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from infra.audit import SqlAuditLog
from workers.console import csrf
from workers.console.auth import Role, User, Users

if TYPE_CHECKING:
    from workers.bootstrap import Runtime

HERE = Path(__file__).parent
P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Console:
    runtime: Runtime
    users: Users
    trusted_header: str | None
    templates: Jinja2Templates

    @property
    def audit(self) -> SqlAuditLog:
        return SqlAuditLog(self.runtime.fleet().engine)

    def current_user(self, request: Request) -> User | None:
        if self.trusted_header and (name := request.headers.get(self.trusted_header)):
            return self.users.named(name)
        name = request.session.get("user")
        role = request.session.get("role")
        if isinstance(name, str) and role in set(Role):
            return User(name, Role(role))
        return None

    def render(
        self, request: Request, template: str, context: dict[str, Any], status_code: int = 200
    ) -> Response:
        context = {
            "user": self.current_user(request),
            "csrf_token": csrf.token(request.session),
            "flash": request.session.pop("flash", None),
            **context,
        }
        return self.templates.TemplateResponse(request, template, context, status_code=status_code)

    async def record(self, user: User, action: str, target: str, detail: str = "") -> None:
        await blocking(
            self.audit.record, actor=user.name, role=user.role, action=action, target=target, detail=detail
        )


async def blocking(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    return await run_in_threadpool(function, *args, **kwargs)


View = Callable[[Request, User], Awaitable[Response]]
FormView = Callable[[Request, User, FormData], Awaitable[Response]]


def viewer(console: Console) -> Callable[[View], Callable[[Request], Awaitable[Response]]]:
    """A page anyone signed in may see; others are sent to the login page."""

    def wrap(view: View) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(view)
        async def guarded(request: Request) -> Response:
            user = console.current_user(request)
            if user is None:
                back = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
                return RedirectResponse(f"{request.scope.get('root_path', '')}/login?next={back}", 303)
            return await view(request, user)

        return guarded

    return wrap


def operator(
    console: Console, needs: Role = Role.OPERATOR
) -> Callable[[FormView], Callable[[Request], Awaitable[Response]]]:
    """A change: a POST from a signed-in user of the role `needs` (an operator unless said)
    with the session's CSRF token, or refused."""

    def wrap(view: FormView) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(view)
        async def guarded(request: Request) -> Response:
            user = console.current_user(request)
            if user is None:
                return PlainTextResponse("sign in first", status_code=401)
            form = await request.form()
            if not csrf.valid(request.session, form.get(csrf.FIELD) or request.headers.get(csrf.HEADER)):
                return PlainTextResponse("missing or wrong CSRF token", status_code=403)
            if not user.may(needs):
                return PlainTextResponse(f"{user.name} is a {user.role}: operators only", status_code=403)
            return await view(request, user, form)

        return guarded

    return wrap


def back_to(request: Request, path: str, flash: str | None = None) -> Response:
    """After a change: a message for the next page, and a redirect (POST, then GET)."""
    if flash:
        request.session["flash"] = flash
    return RedirectResponse(request.scope.get("root_path", "") + path, status_code=303)
