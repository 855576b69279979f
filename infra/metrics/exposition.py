"""Serving metrics: the Prometheus text of a registry, for the web process's `/metrics`, and a
worker's own metrics port."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, start_http_server

CONTENT_TYPE = CONTENT_TYPE_LATEST


def render(registry: CollectorRegistry) -> bytes:
    """The registry's samples in the Prometheus text format."""
    return generate_latest(registry)


def serve(port: int, host: str, registry: CollectorRegistry) -> None:
    """Serve the registry on `host:port` from a daemon thread."""
    start_http_server(port, addr=host, registry=registry)
