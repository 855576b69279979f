"""Benchmarks: fleet throughput and latency against bare Celery on the same broker (see README.md)."""
