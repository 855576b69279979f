"""What a `fleet worker` process does beside running tasks: heartbeats, its metrics port, and
counting the messages it receives that were delivered before.

Hooked to Celery's worker signals in the worker process only (`install`), never at import.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from celery import signals

if TYPE_CHECKING:
    from workers.bootstrap import Runtime

log = logging.getLogger("fleet.worker")


def install(runtime: Runtime, hostname_hint: str | None = None) -> None:
    state: dict[str, Any] = {}

    @signals.worker_ready.connect(weak=False)
    def started(sender: Any = None, **_: Any) -> None:
        from infra.heartbeats import HeartbeatThread, RedisHeartbeats

        hostname = getattr(sender, "hostname", None) or hostname_hint or f"worker@{os.uname().nodename}"
        fleet = runtime.fleet()
        heartbeats = RedisHeartbeats(fleet.redis, runtime.settings.key_prefix)
        queues = [queue.name for queue in runtime.app.amqp.queues.consume_from.values()]
        concurrency = int(
            getattr(getattr(sender, "pool", None), "limit", 0) or runtime.settings.worker_concurrency
        )
        began = time.time()

        def beat() -> None:
            heartbeats.beat(hostname, pid=os.getpid(), concurrency=concurrency, queues=queues, started=began)

        thread = HeartbeatThread(beat, lambda exc: log.warning("heartbeat failed: %s", exc))
        thread.start()
        state.update(thread=thread, heartbeats=heartbeats, hostname=hostname)
        if port := runtime.settings.worker_metrics_port:
            from infra.metrics.exposition import serve
            from infra.metrics.fleet import scrape_registry

            serve(port, runtime.settings.worker_metrics_host, scrape_registry())
            log.info("metrics on http://%s:%d/metrics", runtime.settings.worker_metrics_host, port)

    from infra.metrics.fleet import count_redelivery  # imported once, not for each message

    @signals.task_received.connect(weak=False)
    def received(request: Any = None, **_: Any) -> None:
        count_redelivery(getattr(request, "delivery_info", None) or {})

    @signals.worker_shutdown.connect(weak=False)
    def stopping(**_: Any) -> None:
        if thread := state.get("thread"):
            thread.stop()
            try:
                state["heartbeats"].gone(state["hostname"])
            except Exception as exc:  # its heartbeat expires by itself
                log.warning("could not remove the heartbeat: %s", exc)

    @signals.worker_process_init.connect(weak=False)
    def child_started(**_: Any) -> None:
        from infra.tracing import setup as tracing

        # Per pool process, after the fork: the span processor's thread and the exporter's
        # connections are the child's own (docs/tracing.md).
        tracing.configure("fleet-worker")

    @signals.worker_process_shutdown.connect(weak=False)
    def child_exiting(pid: int | None = None, **_: Any) -> None:
        from infra.metrics.fleet import mark_process_dead
        from infra.tracing import setup as tracing

        mark_process_dead(pid or os.getpid())
        try:  # what the pool process handled last is still worth a line in the history
            runtime.fleet().stores.history_writer.close()
        except Exception as exc:
            log.warning("history entries not written at exit: %s", exc)
        tracing.shutdown()  # what the process's spans still buffer goes out, the last first


def say_as_json() -> None:
    """Celery prints its shutdown notices from signal handlers with `safe_say`, outside logging:
    with FLEET_LOG_FORMAT=json they are written as JSON lines instead (infra/logs.py)."""
    import celery.apps.worker

    from infra.logs import say_as_json as json_say

    celery.apps.worker.safe_say = json_say  # type: ignore[attr-defined]
