"""A fleet of many hosts held: the weekly fleet audit fanned out to ``--hosts`` hosts on one
machine, ``--failing`` of them failing or timing out on purpose.

One `prefect server` on loopback, one work queue and one real process worker per host, each
host replaying a measurements file recorded once on this machine instead of probing (the only
fake, the hardware: tasks.replay; tests/integration/fleet_load.py says how each failing host
fails). Prints the hosts, how many answered, every failed host with its reason, what was lost
(answering hosts whose rows are missing from the history), the audit's wall time, the server's
peak memory and the slowest steps and host. It never fails a build; test_fleet_load.py asserts
that nothing is lost.

    .venv/bin/python -m benchmarks.fleet_load [--hosts 50] [--failing 5] [--timeout 300]
        [--concurrency 10] [--query-seconds 10] [--recording FILE] [--sqlite]

The server runs on a PostgreSQL of its own (the database DESIGN.md names for a fleet; it needs
PostgreSQL installed and root, to run it as the postgres user); ``--sqlite`` puts it on SQLite.

Wall time: the `memwall fleet` command, from start to exit (time.monotonic, this machine's
clock, resolution far below the figure). Server memory: the `prefect server` process group
(the CLI and its uvicorn child), the sum of VmRSS read from /proc every 0.25 s during the audit
(a peak shorter than that can be missed), and the sum of each process's VmHWM since it started
(a ceiling: the processes need not peak at once). Step and host times: the server's own
start and end times of each run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from hardware_profiles.parquet import read_table
from hardware_profiles.schema import MEASUREMENTS
from tests.integration.conftest import Processes
from tests.integration.fleet_load import LoadFleet, plan_hosts, seconds

MB = 1024  # kB per MiB: /proc counts kB (KiB)


def _history_rows(fleet: LoadFleet, run_id: str) -> pd.DataFrame:
    path = fleet.storage / "history" / "measurements" / f"{run_id}.parquet"
    return read_table(path, MEASUREMENTS) if path.exists() else pd.DataFrame(columns=["host"])


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--failing", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=300.0, help="each host's, in seconds")
    parser.add_argument(
        "--concurrency", type=int, default=10, help="the pool's limit of runs at once; 0: none"
    )
    parser.add_argument("--query-seconds", type=float, default=10.0, help="workers' poll period")
    parser.add_argument("--recording", type=Path, help="a measurements file to replay")
    parser.add_argument(
        "--sqlite", action="store_true", help="the server on SQLite, not on a PostgreSQL"
    )
    args = parser.parse_args(argv)
    hosts = plan_hosts(args.hosts, args.failing)
    with tempfile.TemporaryDirectory(prefix="memwall-fleet-load-") as folder:
        root = Path(folder)
        processes = Processes(root / "logs")
        processes.logs.mkdir()
        recording = args.recording.resolve() if args.recording else None
        fleet = LoadFleet(
            root,
            processes,
            hosts,
            args.query_seconds,
            args.concurrency or None,
            recording,
            postgres=not args.sqlite,
        )
        try:
            started = time.monotonic()
            fleet.start()
            print(
                f"set up: a server, {len(hosts)} queues and workers in "
                f"{time.monotonic() - started:.0f} s",
                flush=True,
            )
            audit = fleet.audit(args.timeout)
            if audit.returncode != 0:
                print(f"the fleet audit failed (exit {audit.returncode}):\n{audit.stderr[-3000:]}")
                return
            recorded = len(read_table(fleet.recording, MEASUREMENTS))
            history = _history_rows(fleet, audit.run_id)
            children = fleet.children(audit.run_id)
            steps = fleet.parent_steps(audit.run_id)
        except Exception:
            if fleet.server is not None:  # what the server said, before its folder goes
                print(fleet.server.log.read_text()[-5000:], file=sys.stderr)
            raise
        finally:
            fleet.stop()
    verdicts = audit.verdicts
    answering = [h.name for h in hosts if verdicts.get(h.name, "").endswith(": answered")]
    rows = history.groupby("host").size().to_dict() if not history.empty else {}
    lost = [h for h in answering if rows.get(h, 0) != recorded]
    print(
        f"hosts {len(hosts)}, answered {len(answering)}, failed "
        f"{len(hosts) - len(answering)} (planned {args.failing}); answering hosts whose "
        f"{recorded} rows are not all in the history: {len(lost)} {' '.join(lost)}"
    )
    for host in hosts:
        if host.name not in answering:
            line = verdicts.get(host.name, f"{host.name}: NOT NAMED in the audit's output")
            print(f"  [{host.fault or 'no fault planned'}] {line}")
    print(
        f"wall time of the fleet audit: {audit.wall_s:.1f} s (host time-out {args.timeout:g} s, "
        f"pool concurrency {args.concurrency or 'unlimited'}, workers polling every "
        f"{args.query_seconds:g} s, {'SQLite' if args.sqlite else 'PostgreSQL'})"
    )
    print(
        f"server peak memory: {audit.server_peak_kb / MB:.0f} MiB resident (sum of VmRSS over "
        f"its process group, {audit.samples} samples 0.25 s apart; shorter peaks missed), "
        f"ceiling {audit.server_hwm_kb / MB:.0f} MiB (sum of each process's VmHWM)"
    )
    for name, secs in sorted(steps, key=lambda s: -s[1])[:3]:
        print(f"step {name}: {secs:.1f} s")
    timed = [
        (c["name"], seconds(c["expected_start_time"], c["end_time"]), c["total_run_time"])
        for c in children
        if c["state_type"] == "COMPLETED"
    ]
    if timed:
        name, total, ran = max(timed, key=lambda t: t[1])
        print(
            f"slowest host run: {name}, {total:.1f} s from scheduled to done, of which "
            f"{ran:.1f} s running (server's timestamps)"
        )
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main(sys.argv[1:])
