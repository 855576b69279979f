"""Alembic migrations of the fleet's schema."""
