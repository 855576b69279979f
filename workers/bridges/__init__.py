"""Bridges: processes that take events from an outside transport (a Redis stream, Azure Service
Bus) and hand them to the fleet's Celery queues, acknowledging only after a durable hand-over."""
