"""The harness's producer: POSTs demo deposits to the ingress host's `fleet web` at a steady rate,
in CloudEvents batches, and records every event it sent with the answer it got (the checker reads
this file, never the fleet)."""

from __future__ import annotations

import asyncio
import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BATCH_TYPE = "application/cloudevents-batch+json"
REQUEST_TIMEOUT = 10.0  # longer than FLEET_PUBLISH_TIMEOUT (5 s): the ingress answers 503 first
IN_FLIGHT = 32


@dataclass
class Sent:
    event_id: str
    sent_at: float
    status: str = ""
    answered_at: float = 0.0


@dataclass
class Producer:
    url: str
    token: str
    prefix: str
    events: int
    rate: float
    batch: int = 10
    work_ms: int = 0
    """How long the handler works on each event (`work_ms` of demo.deposit_recorded): a worker
    that dies holds messages still running, as in production."""
    record: list[Sent] = field(default_factory=list)

    async def run(self) -> None:
        """Send `events` deposits, `batch` to a request, `rate` events a second on average; no
        retries: an event refused or unanswered counts as sent, not acknowledged."""
        limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": BATCH_TYPE}
        slots = asyncio.Semaphore(IN_FLIGHT)
        pending: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(limits=limits, headers=headers, timeout=REQUEST_TIMEOUT) as client:
            started = time.monotonic()
            for n, first in enumerate(range(0, self.events, self.batch)):
                due = started + n * self.batch / self.rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                await slots.acquire()
                ids = [f"{self.prefix}-{i}" for i in range(first, min(first + self.batch, self.events))]
                task = asyncio.create_task(self._send(client, ids, slots))
                pending.add(task)
                task.add_done_callback(pending.discard)
            await asyncio.gather(*pending)

    async def _send(self, client: httpx.AsyncClient, ids: list[str], slots: asyncio.Semaphore) -> None:
        body = [
            {
                "specversion": "1.0",
                "id": event_id,
                "source": "bench.cluster",
                "type": "demo.deposit_recorded",
                "datacontenttype": "application/json",
                "data": {"account": f"acc-{event_id[-2:]}", "amount": 1, "work_ms": self.work_ms},
            }
            for event_id in ids
        ]
        now = time.time()
        records = [Sent(event_id, now) for event_id in ids]
        self.record.extend(records)
        try:
            answer = await client.post(self.url, content=json.dumps(body))
            status = str(answer.status_code)
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        finally:
            slots.release()
        answered = time.time()
        for record in records:
            record.status, record.answered_at = status, answered

    def write(self, path: Path) -> None:
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["event_id", "sent_at", "status", "answered_at"])
            for r in self.record:
                writer.writerow([r.event_id, f"{r.sent_at:.3f}", r.status, f"{r.answered_at:.3f}"])
