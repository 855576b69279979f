"""The bridges' Prometheus metrics, one registry-wide definition each."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

BRIDGE_CONNECTED = Gauge(
    "fleet_bridge_connected",
    "1 while the bridge is connected to its transport, else 0",
    ["bridge"],
    multiprocess_mode="livemax",  # one bridge process of a kind connected is enough
)
BRIDGE_MESSAGES = Counter(
    "fleet_bridge_messages_total",
    "Messages a bridge took from its transport, by outcome (handed_over, dead_lettered)",
    ["bridge", "outcome"],
)
