"""Every Prometheus metric the fleet defines, one module per part of the fleet:

- `fleet`: events received, handled, retried and dead-lettered (the dispatcher's `Recorder`),
  the fleet's state read at scrape time (queues, DLQ, outbox, workers), the scrape registry;
- `ingress`: the HTTP ingress and the Graph webhook; `bridges`: the transport bridges;
- `graph`: Graph subscriptions' expiry; `directory`: where multiprocess samples go.

This module imports nothing: `directory` must be usable before `prometheus_client` is imported.
The metrics themselves are listed in docs/metrics.md.
"""
