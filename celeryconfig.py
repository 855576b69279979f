"""Celery behaviour that is the same in every deployment; what varies comes from `FLEET_*`
settings in the composition root (workers/celery_app.py)."""

# JSON only on the wire: no pickle, ever.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
event_serializer = "json"

# Acknowledge after the work, so a dead worker's messages are redelivered...
task_acks_late = True
task_reject_on_worker_lost = True
# ...and a task killed by its time limit is requeued rather than acknowledged away.
task_acks_on_failure = False
task_acks_on_timeout = False

# No result backend: outcomes live in the ledger and the dead-letter queue.
task_ignore_result = True
task_store_errors_even_if_ignored = False

# Queues come from the routing table (workers/celery_app.py); nothing is created by accident.
task_create_missing_queues = False

worker_hijack_root_logger = False
# The console's "Restart pool" (workers/console/workers_page.py) sends Celery's `pool_restart`
# broadcast, which a worker refuses unless this is on; it replaces the pool's child processes
# (each after its current task), e.g. to drop leaked memory, without stopping the worker.
worker_pool_restarts = True
# Task events cost the worker's main process about half its time (and a publisher confirm each
# on RabbitMQ); Flower needs them, so FLEET_TASK_EVENTS=true turns them on.
worker_send_task_events = False
task_send_sent_event = False
broker_connection_retry_on_startup = True
broker_pool_limit = 10
enable_utc = True
timezone = "UTC"
