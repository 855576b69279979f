"""Support tickets: opened exactly once, then acknowledged."""
