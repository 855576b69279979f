"""The Graph domain's rows of the routing table."""

from __future__ import annotations

from handlers.graph import data, email, journal, notifications, resync, subscriptions
from handlers.retry import RetryPolicy
from handlers.routing import BreakerPolicy, Idempotency, Route

QUEUE = "fleet.graph"
_GRAPH_RETRY = RetryPolicy(max_attempts=8, base_delay=1.0, max_delay=120.0)
"""Graph throttles in bursts: more attempts, each waiting its Retry-After when Graph gives one."""
_GRAPH_BREAKER = BreakerPolicy(failure_ratio=0.5, min_calls=5, window=60.0, cooldown=15.0)
"""An unreachable Graph (each call failing after FLEET_GRAPH_TIMEOUT) opens it within a few calls:
its events then wait in the broker, spending no attempt and holding no pool process. A 429 is
throttling, not a failure (infra/throttle.py)."""

_CHANGES = (
    "graph.mail.received",
    "graph.mail.deleted",
    "graph.user.updated",
    "graph.user.deleted",
    "graph.group.updated",
    "graph.group.deleted",
    "graph.event.updated",
    "graph.event.deleted",
)

ROUTES: tuple[Route, ...] = (
    Route(
        type="graph.change_notification",
        handler=notifications.handle_change_notification,
        task="fleet.graph.handle_change_notification",
        queue=QUEUE,
        idempotency=Idempotency.NATURAL,
        data=data.ChangeNotification,
        retry=_GRAPH_RETRY,
        downstream="graph",
        breaker=_GRAPH_BREAKER,
    ),
    Route(
        type="graph.lifecycle_notification",
        handler=notifications.handle_lifecycle_notification,
        task="fleet.graph.handle_lifecycle_notification",
        queue=QUEUE,
        idempotency=Idempotency.CLAIM,
        data=data.LifecycleNotification,
        retry=_GRAPH_RETRY,
        downstream="graph",
        breaker=_GRAPH_BREAKER,
        lease=120.0,
    ),
    Route(
        type="graph.resync_requested",
        handler=resync.resync_resource,
        task="fleet.graph.resync_resource",
        queue=QUEUE,
        idempotency=Idempotency.TRANSACTIONAL,
        data=data.ResyncRequested,
        retry=_GRAPH_RETRY,
        downstream="graph",
        breaker=_GRAPH_BREAKER,
    ),
    Route(
        type="graph.resync_due",
        handler=resync.request_resyncs,
        task="fleet.graph.resync_all",
        queue=QUEUE,
        idempotency=Idempotency.NATURAL,
        data=data.ResyncDue,
    ),
    Route(
        type="graph.renewal_due",
        handler=subscriptions.renew_subscriptions,
        task="fleet.graph.renew_subscriptions",
        queue=QUEUE,
        idempotency=Idempotency.NATURAL,
        data=data.RenewalDue,
        retry=_GRAPH_RETRY,
        downstream="graph",
        breaker=_GRAPH_BREAKER,
    ),
    Route(
        type="email.send",
        handler=email.send_email,
        task="fleet.email.send",
        queue="fleet.email",
        idempotency=Idempotency.CLAIM,
        data=data.EmailSend,
        retry=_GRAPH_RETRY,
        downstream="graph",
        breaker=_GRAPH_BREAKER,
        lease=120.0,
    ),
    *(
        Route(
            type=change,
            handler=journal.record_change,
            task=f"fleet.{change}",
            queue=QUEUE,
            idempotency=Idempotency.TRANSACTIONAL,
            data=data.GraphChange,
        )
        for change in _CHANGES
    ),
)
