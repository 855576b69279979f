"""Processes and their wiring: the composition root, the Celery app, the CLI, the web process."""
