"""`sudo .venv/bin/python -m bench.cluster [--scenario NAME|all] [--events N] [--rate R]`: the
fleet on five network namespaces (database, three workers, ingress), one fault per scenario
while events flow, and the checker's figures (docs/scaling-harness.md)."""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench.cluster import checker
from bench.cluster.cluster import DATABASE, HOSTS, Fleet
from bench.cluster.network import Network
from bench.cluster.producer import Producer
from bench.cluster.scenarios import SCENARIOS, Scenario, make_proxy
from bench.cluster.services import start_postgres

FAULT_AT = 10.0  # seconds of steady flow before the fault
SETTLE_TIMEOUT = 180.0
QUIET = 10.0  # no new effect for this long, and nothing acknowledged missing: done
LOCK = Path("/run/fleet-bench-cluster.lock")


async def run_scenario(
    scenario: Scenario, directory: Path, events: int, rate: float, work_ms: int
) -> checker.Figures:
    fleet = Fleet(
        f"cluster_{scenario.name.replace('-', '_')}",
        directory / scenario.name,
        min_replicas=scenario.min_replicas,
        through_proxy=scenario.through_proxy,
    )
    notes: dict[str, object] = {}
    proxy = make_proxy()
    try:
        if scenario.through_proxy:
            await proxy.start()
            notes["proxy"] = proxy
        await asyncio.to_thread(fleet.start)
        prefix = f"{scenario.name}-{int(time.time())}"
        producer = Producer(
            fleet.ingress_url, fleet.token, prefix, events, rate, work_ms=scenario.work_ms or work_ms
        )
        notes["work_ms"] = producer.work_ms
        sending = asyncio.create_task(producer.run())
        await asyncio.sleep(FAULT_AT)
        struck = time.time()
        fault_end = await scenario.fault(fleet, notes)
        await sending
        notes["flow ended after the fault"] = f"{time.time() - fault_end:.1f} s"
        sent_csv = fleet.directory / "sent.csv"
        producer.write(sent_csv)
        await asyncio.to_thread(_settle, sent_csv, fleet.database_url, prefix)
        notes["lost, first"] = checker.lost_ids(sent_csv, fleet.database_url, prefix)[:20]
        notes["left on the broker"] = await asyncio.to_thread(fleet.broker_leftovers)
        figures = checker.check(scenario.name, sent_csv, fleet.database_url, prefix, fault_end)
        notes.pop("proxy", None)
        notes |= {"fault at": f"{struck:.1f}", "fault end": f"{fault_end:.1f}"}
        (fleet.directory / "figures.json").write_text(
            json.dumps({**figures.__dict__, "notes": notes}, default=str)
        )
        print(f"  {scenario.what}: {notes}", flush=True)
        return figures
    finally:
        await proxy.stop()
        await asyncio.to_thread(fleet.stop)


def _settle(sent_csv: Path, database_url: str, prefix: str) -> None:
    """Wait until every acknowledged event took effect or was dead-lettered and no effect came
    for QUIET seconds, or SETTLE_TIMEOUT passed (what is missing then is lost)."""
    started = time.monotonic()
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() - started < SETTLE_TIMEOUT:
        counts, letters, _ = checker.effects(database_url, prefix)
        count = sum(counts.values()) + len(letters)
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        quiet = time.monotonic() - last_change
        if quiet > QUIET and checker.missing(sent_csv, database_url, prefix) == 0:
            return
        if quiet > 60:  # nothing moves any more: a lease is 20 s, a sweep 2 s
            return
        time.sleep(1)


async def main_async(
    names: list[str], events: int, rate: float, work_ms: int, directory: Path
) -> list[checker.Figures]:
    network = Network(HOSTS)
    network.up()
    postgres = None
    results: list[checker.Figures] = []
    try:
        postgres = start_postgres(DATABASE, directory / "postgres", directory)
        for name in names:
            print(f"scenario {name} ({events} events at {rate:g}/s) ...", flush=True)
            try:
                results.append(await run_scenario(SCENARIOS[name], directory, events, rate, work_ms))
            except Exception as exc:
                print(f"  {name} failed: {type(exc).__name__}: {exc}", flush=True)
    finally:
        if postgres is not None:
            postgres.stop()  # a clean shutdown: the data stays readable in the run's directory
        network.down()
    return results


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    parser.add_argument("--scenario", default="all", choices=["all", *SCENARIOS])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200.0, help="events a second")
    parser.add_argument("--work-ms", type=int, default=20, help="the handler's time per event")
    parser.add_argument("--dir", type=Path, help="where logs, the producer's record and figures go")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench.cluster makes network namespaces: run it as root (sudo)")
    # One run at a time: the names and addresses are fixed, and a run starts by taking down
    # whatever holds them. The lock goes with the process, however it ends.
    lock = LOCK.open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(f"another bench.cluster run holds {LOCK}")
    # SIGTERM unwinds like Ctrl-C, so every namespace, link and process goes (main_async's finally)
    signal.signal(signal.SIGTERM, _interrupt)
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    directory = args.dir or Path(tempfile.mkdtemp(prefix="fleet-cluster-"))
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)  # PostgreSQL runs as its own user under it
    print(f"logs and records in {directory}", flush=True)
    results = asyncio.run(main_async(names, args.events, args.rate, args.work_ms, directory))
    print(checker.Figures.HEADER)
    for figures in results:
        print(figures.line())


if __name__ == "__main__":
    main()
