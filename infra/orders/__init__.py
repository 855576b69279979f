"""Adapters of the order saga: its tables, the order book, the time-out query, the payment client."""
