"""A fleet of many hosts on one machine, for test_fleet_load.py and benchmarks/fleet_load.py.

A `prefect server` of its own (tests/integration/conftest.py), the memwall process work pool
with one queue and one real process worker per host, and the deployments of prefect.yaml. The
only fake is the hardware: a host replays a measurements file recorded once on this machine
(``memwall probe --quick --out``; tasks.replay) instead of probing. The failing hosts fail for
real, each in turn one of:

- ``no backend``: its worker runs with ``JAX_PLATFORMS=tpu`` and no recording, so its probe
  really cannot start JAX on this machine (test_fleet.py's charlie): the run raises;
- ``busy``: another process holds the host's probe lock for the whole audit, so the run waits
  past the fleet's time-out and is cancelled;
- ``corrupt recording``: its recording was cut short, so its replay raises.

Every host has a probe lock of its own (they stand for separate machines). Workers start in
waves, each wave waiting for its queues to be polled, so fifty Python processes never start at
once on a small machine; they poll every ``query_s`` seconds (Prefect's default, 10), not every
second as test_fleet.py's few do: fifty polling every second kept a server on a loaded
two-core machine from answering within 30 s. The pool
may take a concurrency limit: runs beyond it wait on the server, and fifty at once would hold
as many ~250 MB Python processes (each probe-host run imports JAX).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.conftest import (
    BIN,
    REPO,
    Processes,
    Server,
    memwall,
    prefect,
    start_server,
    wait_for,
)
from tests.integration.postgres import INSTALL_HINT, postgres_bin, running_postgres

POOL = "memwall"
NO_BACKEND, BUSY, CORRUPT = "no backend", "busy", "corrupt recording"
FAULTS = (NO_BACKEND, BUSY, CORRUPT)
WAVE = 5
PAGE = 200


def postgres_missing() -> str | None:
    """Why this machine cannot start a PostgreSQL of its own, or None: it can."""
    if postgres_bin() is None:
        return INSTALL_HINT
    return None


@dataclass(frozen=True)
class Host:
    name: str
    fault: str | None  # one of FAULTS, or None: it answers


def plan_hosts(hosts: int, failing: int) -> list[Host]:
    """``hosts`` hosts, ``failing`` of them spread evenly over the fleet, the faults in turn."""
    if not 0 <= failing <= hosts:
        raise ValueError(f"failing hosts must be 0 to {hosts}; got {failing}")
    width = len(str(hosts))
    at = {i * hosts // failing: FAULTS[i % len(FAULTS)] for i in range(failing)}
    return [Host(f"host-{i + 1:0{width}d}", at.get(i)) for i in range(hosts)]


def _group_memory_kb(pgid: int) -> tuple[int, int]:
    """(resident kB now, the sum of each process's peak resident kB) of process group
    ``pgid``, from /proc: VmRSS and VmHWM of every process whose group it is."""
    rss = hwm = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(entry.path, "stat").read_text()
            # Fields after the command (which may hold spaces) in parentheses: state, ppid, pgrp.
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            status = Path(entry.path, "status").read_text()
            rss += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
            hwm += int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return rss, hwm


class MemorySampler:
    """The largest resident set of a process group, sampled every ``every_s`` seconds."""

    def __init__(self, pgid: int, every_s: float = 0.25) -> None:
        self.pgid = pgid
        self.every_s = every_s
        self.peak_kb = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, _group_memory_kb(self.pgid)[0])
            self.samples += 1
            self._stop.wait(self.every_s)

    @contextlib.contextmanager
    def running(self) -> Iterator[MemorySampler]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()


@dataclass(frozen=True)
class Audit:
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    server_peak_kb: int  # the largest sampled sum of VmRSS over the server's processes
    server_hwm_kb: int  # the sum of their own peaks (VmHWM) since they started: a ceiling
    samples: int

    @property
    def verdicts(self) -> dict[str, str]:
        """Each host's line of the CLI's stderr, "host-07: answered" and the like."""
        found = {}
        for line in self.stderr.splitlines():
            host, sep, _ = line.partition(": ")
            if sep and host.startswith("host-"):
                found[host] = line
        return found

    @property
    def pdf(self) -> Path:
        return Path(self.stdout.strip().splitlines()[-1])

    @property
    def run_id(self) -> str:
        return self.pdf.stem.removeprefix("memwall-fleet-")


class LoadFleet:
    """The server, the pool, the deployments and one worker per host, under ``root``."""

    def __init__(
        self,
        root: Path,
        processes: Processes,
        hosts: list[Host],
        query_s: float = 10.0,
        concurrency: int | None = None,
        recording: Path | None = None,
        postgres: bool = True,
    ) -> None:
        self.root = root
        self.postgres = postgres
        # PostgreSQL (DESIGN.md names it for a fleet's server: on SQLite, fifty workers' polls
        # left queues unmarked as polled for minutes, "database is locked").
        self._database = contextlib.ExitStack()
        self.processes = processes
        self.hosts = hosts
        self.query_s = query_s
        self.concurrency = concurrency
        self.storage = root / "storage"
        self.recording = recording or root / "recording.parquet"
        self.server: Server | None = None
        self._held: list[int] = []

    @property
    def api(self) -> Server:
        if self.server is None:
            raise RuntimeError("start the fleet first")
        return self.server

    def record(self) -> None:
        """One real quick probe of this machine: the recording every answering host replays."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MEMWALL_"))}
        env.update(
            JAX_PLATFORMS="cpu",
            MEMWALL_PROBE_LOCK=str(self.root / "probe.lock"),
            PREFECT_HOME=str(self.root / "record-home"),
        )
        result = memwall(["probe", "--quick", "--out", str(self.recording)], env, self.root)
        if result.returncode != 0:
            raise RuntimeError(f"recording the measurements failed: {result.stderr[-2000:]}")

    def start(self) -> None:
        if not self.recording.exists():
            self.record()
        self.storage.mkdir()
        settings = {}
        if self.postgres:
            settings = self._database.enter_context(running_postgres(self.root)).prefect_env()
        self.server = start_server(self.processes, settings)
        env = self.api.client_env
        prefect(["work-pool", "create", POOL, "--type", "process"], env)
        if self.concurrency is not None:
            prefect(["work-pool", "set-concurrency-limit", POOL, str(self.concurrency)], env)
        for host in self.hosts:
            self.api.post(f"/work_pools/{POOL}/queues", {"name": host.name})
        deployed = memwall(["deploy"], {**env, "MEMWALL_STORAGE": str(self.storage)}, REPO)
        if deployed.returncode != 0:
            raise RuntimeError(f"memwall deploy failed: {deployed.stderr[-2000:]}")
        corrupt = self.root / "corrupt-recording.parquet"
        corrupt.write_bytes(self.recording.read_bytes()[: self.recording.stat().st_size // 2])
        (self.root / "locks").mkdir()
        for host in self.hosts:
            if host.fault == BUSY:
                self._hold(self._lock(host))
        for first in range(0, len(self.hosts), WAVE):
            wave = self.hosts[first : first + WAVE]
            logs = {h.name: self._start_worker(h, corrupt) for h in wave}
            self._wait_polled([h.name for h in wave], logs)

    def _lock(self, host: Host) -> Path:
        return self.root / "locks" / f"{host.name}.lock"

    def _hold(self, lock: Path) -> None:
        """Take the host's probe lock, as another prober on that host would."""
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f"pid {os.getpid()}, the load test standing in for another prober\n".encode())
        self._held.append(fd)

    def stop(self) -> None:
        """Free the held locks, stop every process, remove PostgreSQL's folder."""
        for fd in self._held:
            os.close(fd)  # closing the last descriptor frees the flock
        self._held.clear()
        self.processes.stop_all()
        self._database.close()

    def _start_worker(self, host: Host, corrupt: Path) -> Path:
        env = {
            **self.api.client_env,
            "PREFECT_WORKER_QUERY_SECONDS": f"{self.query_s:g}",
            "MEMWALL_PROBE_LOCK": str(self._lock(host)),
            "JAX_PLATFORMS": "tpu" if host.fault == NO_BACKEND else "cpu",
        }
        if host.fault != NO_BACKEND:
            replay = corrupt if host.fault == CORRUPT else self.recording
            env["MEMWALL_REPLAY_MEASUREMENTS"] = str(replay)
        command = [str(BIN / "prefect"), "worker", "start", "--pool", POOL]
        command += ["--work-queue", host.name, "--name", f"worker-{host.name}"]
        return self.processes.start(f"worker-{host.name}", command, env)

    def queues(self) -> dict[str, Any]:
        found = self.api.post(f"/work_pools/{POOL}/queues/filter", {"limit": PAGE, "offset": 0})
        return {q["name"]: q for q in found}

    def _wait_polled(self, names: list[str], logs: dict[str, Path]) -> None:
        def polled() -> bool:
            queues = self.queues()
            return all(queues[n].get("last_polled") is not None for n in names)

        wait_for(f"workers for {', '.join(names)}", polled, 600, logs[names[-1]])

    def audit(self, timeout_s: float) -> Audit:
        """The fleet audit of every host, as `memwall fleet --quick` runs it from here."""
        args = ["fleet", "--pool", POOL, "--storage", str(self.storage), "--quick"]
        args += ["--timeout", f"{timeout_s:g}"]
        for host in self.hosts:
            args += ["--host", host.name]
        sampler = MemorySampler(self.api.pid)
        started = time.monotonic()
        with sampler.running():
            result = memwall(args, self.api.client_env, self.storage, timeout=timeout_s + 900)
        wall_s = time.monotonic() - started
        return Audit(
            result.returncode,
            result.stdout,
            result.stderr,
            wall_s,
            sampler.peak_kb,
            _group_memory_kb(self.api.pid)[1],
            sampler.samples,
        )

    def children(self, run_id: str) -> list[dict[str, Any]]:
        """The run's probe-host runs, as the server has them."""
        return list(
            self.api.post(
                "/flow_runs/filter",
                {
                    "flow_runs": {"tags": {"all_": [f"memwall-run:{run_id}"]}},
                    "limit": PAGE,
                    "offset": 0,
                },
            )
        )

    def parent_steps(self, run_id: str) -> list[tuple[str, float]]:
        """The last fleet-audit run's steps and their seconds: each task run; the fan-out
        (from the end of live-hosts to the creation of the last probe-host run); the wait for
        the hosts (from there to the next task). ``run_deployment``'s tracking task runs are
        no step of their own."""
        (parent,) = self.api.post(
            "/flow_runs/filter",
            {
                "flows": {"name": {"any_": ["fleet-audit"]}},
                "flow_runs": {"start_time": {"is_null_": False}},
                "sort": "START_TIME_DESC",
                "limit": 1,
                "offset": 0,
            },
        )
        found = self.api.post(
            "/task_runs/filter",
            {
                "task_runs": {"flow_run_id": {"any_": [parent["id"]]}},
                "limit": PAGE,
                "offset": 0,
            },
        )
        tasks = sorted(
            (
                t
                for t in found
                if t["start_time"] and t["end_time"] and "run_deployment" not in t["task_key"]
            ),
            key=lambda t: str(t["start_time"]),
        )
        steps = [(str(t["name"]), seconds(t["start_time"], t["end_time"])) for t in tasks]
        live = next((t for t in tasks if str(t["name"]).startswith("live_hosts_task")), None)
        children = self.children(run_id)
        if live is not None and children:
            launched = max(str(c["created"]) for c in children)
            steps.append((f"fan-out ({len(children)} runs)", seconds(live["end_time"], launched)))
            after = [t for t in tasks if str(t["start_time"]) > launched]
            if after:
                steps.append(("wait for the hosts", seconds(launched, after[0]["start_time"])))
        return steps


def seconds(start: str, end: str) -> float:
    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()
