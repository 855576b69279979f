"""The parts the composition root (workers/bootstrap.py) wires, one container per concern:
`stores` (the fleet's own state), `domains` (the ports handlers ask for), `ingress` (what the
web process checks requests with) and `transports` (Redis streams, Service Bus, bridges).
Each builds its adapters on first use, never at import."""
