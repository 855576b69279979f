"""The core of the fleet: event envelope, error tree, ports, retry policy and the handler registry.

Nothing here imports an SDK, Celery or a database driver; adapters live in `infra/`.
"""
