"""The fleet's own domains, declared as any installed domain package declares its own (entry
points `fleet.domains` in pyproject.toml): their routes, their adapters and their schedules.
Their tables are in the core migrations (infra/migrations/versions/)."""

from __future__ import annotations

from handlers.cache.routes import ROUTES as CACHE_ROUTES
from handlers.demo.routes import ROUTES as DEMO_ROUTES
from handlers.domains import Domain, DomainPorts
from handlers.graph.routes import ROUTES as GRAPH_ROUTES
from handlers.orders.routes import ROUTES as ORDER_ROUTES
from infra import keys
from infra.cache import TaggedCache
from infra.demo import RedisDownstreamSwitch, RedisReceiptSender, SqlDepositBook
from infra.domain_context import DomainContext
from infra.graph.store import SqlChangeJournal, SqlDeltaLinks
from infra.graph.wiring import GraphAdapters
from infra.ingress.subscription_secrets import RedisSecretBroadcast
from infra.orders.store import SqlOrderBook
from infra.orders.wiring import OrderAdapters


def demo_ports(context: DomainContext) -> DomainPorts:
    prefix = context.settings.key_prefix
    return DomainPorts(
        services={
            "receipts": RedisReceiptSender(context.redis, prefix),
            "downstream": RedisDownstreamSwitch(context.redis, prefix),
        },
        insert_ports={"deposits": SqlDepositBook},
    )


def cache_ports(context: DomainContext) -> DomainPorts:
    namespace = keys.cache_namespace(context.settings.key_prefix)
    return DomainPorts(services={"cache": TaggedCache(context.redis, namespace=namespace)})


def order_ports(context: DomainContext) -> DomainPorts:
    orders = OrderAdapters(context.settings, context.engine)
    return DomainPorts(
        services={"payments": orders.payments, "order_policy": orders.policy},
        transaction_ports={"orders": SqlOrderBook},
    )


def graph_ports(context: DomainContext) -> DomainPorts:
    broadcast = RedisSecretBroadcast(context.redis, context.settings.key_prefix)
    graph = GraphAdapters(context.settings, context.engine, secrets_changed=broadcast.changed)
    return DomainPorts(
        services={
            "graph": graph.reader,
            "mailer": graph.mailer,
            "email_sends": graph.send_records,
            "subscriptions": graph.subscriptions,
            "graph_setup": graph.setup,
        },
        transaction_ports={"delta_links": SqlDeltaLinks, "journal": SqlChangeJournal},
        close=graph.close,  # its SDK client may hold connections
    )


DEMO = Domain(name="demo", routes=DEMO_ROUTES, ports=demo_ports)
CACHE = Domain(name="cache", routes=CACHE_ROUTES, ports=cache_ports)
ORDERS = Domain(
    name="orders",
    routes=ORDER_ROUTES,
    ports=order_ports,
    schedules={
        "time-out-orders": {"task": "fleet.orders.time_out", "schedule": 5.0, "options": {"expires": 10}},
    },
)
GRAPH = Domain(
    name="graph",
    routes=GRAPH_ROUTES,
    ports=graph_ports,
    # An event per slot, handled by fleet.graph.renew_subscriptions / fleet.graph.resync_all.
    schedules={
        "graph-renew-subscriptions": {"publish": "graph.renewal_due", "every": 900.0, "data": {}},
        "graph-delta-resync": {"publish": "graph.resync_due", "every": 3600.0, "data": {}},
    },
)
