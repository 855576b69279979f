"""Thin Celery adapters: decode a message, hand it to the dispatcher, never lose it."""
