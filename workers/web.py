"""The web process: health, metrics, the events API and webhooks (workers/ingress), the console."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from infra.db import ping
from infra.metrics import exposition
from infra.metrics.fleet import FleetStateCollector, scrape_registry
from infra.metrics.graph import SubscriptionExpiryCollector
from infra.migrate import missing_revision
from workers.console.app import make_console
from workers.ingress import ingress_routes
from workers.status import metric_probes, schedule_collector

if TYPE_CHECKING:
    from workers.bootstrap import Runtime


def make_web_app(runtime: Runtime) -> Starlette:
    """The app; `fleet web` serves it with an HTTP server span per request when it exports
    traces (infra/tracing/setup.py `instrument_asgi`)."""

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    def readyz(_: Request) -> Response:
        checks: dict[str, str] = {}
        fleet = runtime.fleet()

        def database() -> None:
            ping(fleet.engine)
            if missing := missing_revision(fleet.engine, runtime.migrations):
                checks["schema"] = missing

        def broker() -> None:
            with fleet.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)

        for name, probe in (("database", database), ("redis", fleet.redis.ping), ("broker", broker)):
            try:
                probe()
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"unreachable: {type(exc).__name__}"
        checks.setdefault("schema", "ok" if checks["database"] == "ok" else "unknown")
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    registry = scrape_registry(
        {
            "fleet_state": FleetStateCollector(lambda: metric_probes(runtime)),
            "schedules": schedule_collector(runtime),
            # A lambda: the fleet (its engine) is built at the first scrape, in the serving process.
            "graph_subscriptions": SubscriptionExpiryCollector(
                lambda: runtime.fleet().domains.graph.stored_subscriptions.all()  # noqa: PLW0108
            ),
        }
    )

    def metrics(_: Request) -> Response:
        return Response(exposition.render(registry), media_type=exposition.CONTENT_TYPE)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            # Each domain's routes (ingress API, webhooks, console) join here, one line each.
            *ingress_routes(runtime),
            Mount("/console", app=make_console(runtime)),
        ]
    )
