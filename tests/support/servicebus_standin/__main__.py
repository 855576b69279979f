"""`python -m tests.support.servicebus_standin --port N [--lock-duration S] [--sessions Q,...]`:
the stand-in as a process of its own (benchmarks, trying the fleet by hand), until SIGTERM."""

from __future__ import annotations

import argparse
import signal
import threading

from tests.support.servicebus_standin import ServiceBusStandIn


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.servicebus_standin")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lock-duration", type=float, default=30.0)
    parser.add_argument("--max-delivery-count", type=int, default=10)
    parser.add_argument("--sessions", default="", help="queues that require sessions, comma-separated")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sessions = {name for name in args.sessions.split(",") if name}
    with ServiceBusStandIn(
        port=args.port,
        lock_duration=args.lock_duration,
        max_delivery_count=args.max_delivery_count,
        sessions=sessions,
    ) as bus:
        print(f"Service Bus stand-in listening: {bus.connection_string}", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
