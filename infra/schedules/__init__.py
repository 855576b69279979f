"""Schedule adapters: the Redis state store, the leader-lock beat scheduler, the metrics collector
and the durable store of runtime schedules."""
