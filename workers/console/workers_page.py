"""The workers page: each worker's pool, active tasks and counts (Celery remote control); grow,
shrink or restart a pool, or shut a worker down (after a confirmation in the browser)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from workers.console.auth import User
from workers.console.common import Console, back_to, blocking, operator, viewer
from workers.console.overview import from_broker

if TYPE_CHECKING:
    from celery import Celery

    from workers.bootstrap import Runtime

_REPLY_TIMEOUT = 1.5
ACTIONS = ("grow", "shrink", "restart", "shutdown")


def describe_workers(runtime: Runtime) -> list[dict[str, Any]]:
    """Each worker that answers remote control, with its last heartbeat (infra/heartbeats.py)."""
    inspect = runtime.app.control.inspect(timeout=_REPLY_TIMEOUT)
    stats: dict[str, Any] = inspect.stats() or {}
    answered_at = time.time()
    active: dict[str, Any] = inspect.active() or {}
    beats = {beat.hostname: beat.beat for beat in runtime.fleet().stores.heartbeats.online()}
    workers = []
    for name in sorted(stats):
        info = stats[name]
        pool = info.get("pool") or {}
        workers.append(
            {
                "name": name,
                "pid": info.get("pid"),
                "uptime": info.get("uptime"),
                "pool": pool.get("implementation", "")
                .split(":")[0]
                .rsplit(".", 1)[-1],  # prefork, threads, ...
                "concurrency": pool.get("max-concurrency"),
                "processes": pool.get("processes", []),
                "active": len(active.get(name, [])),
                "processed": sum((info.get("total") or {}).values()),
                "by_task": info.get("total") or {},
                "last_heard": max(beats.get(name, 0.0), answered_at),
            }
        )
    return workers


def _act(app: Celery, worker: str, action: str, n: int) -> str:
    destination = [worker]
    if action == "grow":
        replies = app.control.pool_grow(n, destination=destination, reply=True, timeout=_REPLY_TIMEOUT)
    elif action == "shrink":
        replies = app.control.pool_shrink(n, destination=destination, reply=True, timeout=_REPLY_TIMEOUT)
    elif action == "restart":  # new child processes, each once its current task is done (celeryconfig.py)
        replies = app.control.pool_restart(destination=destination, reply=True, timeout=_REPLY_TIMEOUT)
    else:
        app.control.shutdown(destination=destination)  # a warm shutdown: running work finishes
        return "shutdown sent"
    return repr(replies) if replies else "no reply"


def routes(console: Console) -> list[Route]:
    app = console.runtime.app

    @viewer(console)
    async def workers_page(request: Request, user: User) -> Response:
        problems: list[str] = []
        workers = await blocking(from_broker, "workers", lambda: describe_workers(console.runtime), problems)
        return console.render(request, "workers.html", {"workers": workers or [], "problems": problems})

    @operator(console)
    async def worker_action(request: Request, user: User, form: FormData) -> Response:
        worker, action = str(form.get("worker", "")), str(form.get("action", ""))
        n = str(form.get("n", "1"))
        if not worker or action not in ACTIONS or not n.isdigit() or int(n) < 1:
            return PlainTextResponse(f"name a worker, an action ({', '.join(ACTIONS)}) and n >= 1", 400)
        outcome = await blocking(_act, app, worker, action, int(n))
        target = f"{worker} by {n}" if action in ("grow", "shrink") else worker
        await console.record(user, f"workers.{action}", target, outcome)
        return back_to(request, "/workers", f"{action} {target}: {outcome}")

    return [Route("/workers", workers_page), Route("/workers/action", worker_action, methods=["POST"])]
