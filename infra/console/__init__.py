"""Read models for the operations console: aggregates over the fleet's own tables."""
