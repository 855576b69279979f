"""Adapters to the outside world: settings, the database, Redis, the broker; and deployment files."""
