"""Runs that end in a true state: real `probe-host` runs, killed with SIGKILL, on a real
Prefect server and real process workers, end Crashed on the server within the bound.

Two deaths. The run's process alone (the out-of-memory killer's choice): its worker sees the
exit and marks the run Crashed at once. The whole host (worker and run, as a reboot does):
nothing is left to report, and only the missing heartbeats tell; the automation that
``memwall deploy`` made marks the run Crashed within ``CRASH_BOUND_S`` of the kill. A live run
beside it, as silent in its work as the dead one (both wait for the probe lock this test
holds), keeps sending heartbeats and stays Running past the window.

The server is this module's own: the automation is server-wide, and the kills would leave
the shared server's other files with a dead worker. Heartbeats cannot come faster than every
30 s (Prefect's floor), so this test takes the shipped settings, and about two minutes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from flows.heartbeats import (
    AUTOMATION_NAME,
    CRASH_BOUND_S,
    CRASH_MESSAGE,
    HEARTBEAT_ENV,
    HEARTBEAT_FREQUENCY_S,
    SILENCE_WINDOW_S,
)
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

pytestmark = pytest.mark.integration
POOL = "memwall"
SURVIVOR = "alpha"  # its worker lives throughout
DOOMED = "bravo"  # its worker and runs are killed, as a host that reboots
SERVED = "served"  # `memwall serve`'s audit deployment, killed with its runs too
# The worker's own verdict on a child that died of a signal.
WORKER_CRASH = "Process exited with status code: -9. Process exited due to a SIGKILL signal."


@dataclass(frozen=True)
class Fleet:
    server: Server
    probe_host: str  # the deployment's id
    served: str  # the audit deployment `memwall serve` runs
    storage: Path
    groups: dict[str, int]  # worker's queue, or SERVED -> its process group
    logs: dict[str, Path]
    started: list[str]  # every run started, for the teardown

    def start_run(self, host: str) -> str:
        """A probe-host run on the host's queue, once it is Running."""
        parameters = {
            "storage": str(self.storage),
            "run_id": uuid.uuid4().hex[:8],
            "host": host,
            "quick": True,
        }
        body = {"parameters": parameters, "work_queue_name": host}
        return self._started(self.probe_host, body, f"probe-host on {host}")

    def start_served_audit(self) -> str:
        """A run of the audit that `memwall serve` serves, once it is Running."""
        return self._started(self.served, {}, "served audit")

    def _started(self, deployment: str, body: dict[str, Any], what: str) -> str:
        run = self.server.post(f"/deployments/{deployment}/create_flow_run", body)
        run_id: str = run["id"]
        self.started.append(run_id)
        wait_for(f"{what} to start", lambda: self.state(run_id) == "RUNNING", 180, None)
        return run_id

    def run(self, run_id: str) -> Any:
        return self.server.get(f"/flow_runs/{run_id}")

    def state(self, run_id: str) -> str:
        found: str = self.run(run_id)["state"]["type"]
        return found

    def has_state(self, run_id: str, state: str) -> bool:
        return self.state(run_id) == state


def run_processes(run_id: str) -> list[int]:
    """This machine's processes that belong to the flow run: the worker starts each run's
    processes with PREFECT__FLOW_RUN_ID in their environment."""
    marker = f"PREFECT__FLOW_RUN_ID={run_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return sorted(found)


def parent(pid: int) -> int:
    # /proc/PID/stat: "pid (command) state ppid ..."; the command may hold spaces.
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def tree(pid: int) -> list[int]:
    """``pid`` and every process under it, whatever session it started: all that a host's
    reboot takes with a worker (or with `memwall serve`)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                children.setdefault(parent(int(entry.name)), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo.extend(children.get(found[-1], []))
    return found


def environment(pid: int) -> list[bytes]:
    """The environment ``pid`` was started with."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return []


def alive(pid: int) -> bool:
    with contextlib.suppress(OSError):
        # Field 3 of /proc/PID/stat is the state; Z is a zombie: dead, not yet reaped.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


def kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def polled(server: Server, queue: str) -> bool:
    return server.get(f"/work_pools/{POOL}/queues/{queue}")["last_polled"] is not None


def served(server: Server) -> bool:
    with contextlib.suppress(httpx.HTTPStatusError):
        return bool(server.get(f"/deployments/name/audit/{SERVED}"))
    return False


@pytest.fixture(scope="module")
def probe_lock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The probe lock the runs' workers share, held by this test: every run discovers its
    host, then waits for the lock, alive, sending heartbeats, and using no CPU."""
    path = tmp_path_factory.mktemp("lock") / "probe.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield path
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, probe_lock: Path) -> Iterator[Fleet]:
    processes = Processes(tmp_path_factory.mktemp("crash-processes"))
    started: list[str] = []
    try:
        server = start_server(processes)
        env = server.client_env
        prefect(["work-pool", "create", POOL, "--type", "process"], env)
        for queue in (SURVIVOR, DOOMED):
            server.post(f"/work_pools/{POOL}/queues", {"name": queue})
        deployed = memwall(["deploy", "--name", "probe-host"], env, REPO)
        assert deployed.returncode == 0, deployed.stderr
        assert f"automation {AUTOMATION_NAME} created" in deployed.stderr
        logs, groups = {}, {}
        lock = {"MEMWALL_PROBE_LOCK": str(probe_lock), "JAX_PLATFORMS": "cpu"}
        for queue in (SURVIVOR, DOOMED):
            logs[queue] = processes.start(
                f"worker-{queue}",
                [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--work-queue", queue],
                {**env, **lock},
            )
            groups[queue] = processes.running[-1][0].pid
        logs[SERVED] = processes.start(
            "serve",
            [str(BIN / "python"), "-m", "flows.cli", "serve", "--name", SERVED, "--quick"],
            {**env, **lock},
        )
        groups[SERVED] = processes.running[-1][0].pid
        for queue in (SURVIVOR, DOOMED):
            wait_for(f"worker for {queue}", partial(polled, server, queue), 120, logs[queue])
        wait_for("memwall serve", partial(served, server), 120, logs[SERVED])
        yield Fleet(
            server,
            deployed.stdout.split()[0],
            server.get(f"/deployments/name/audit/{SERVED}")["id"],
            tmp_path_factory.mktemp("storage"),
            groups,
            logs,
            started,
        )
    finally:
        # A run's processes are a session of their own, outside their worker's group.
        for run_id in started:
            kill(run_processes(run_id))
        processes.stop_all()


def test_deploy_makes_one_automation_and_gives_runs_their_heartbeat(fleet: Fleet) -> None:
    again = memwall(["deploy", "--name", "probe-host"], fleet.server.client_env, REPO)
    assert again.returncode == 0, again.stderr
    assert f"automation {AUTOMATION_NAME} updated" in again.stderr
    found = fleet.server.post("/automations/filter", {"limit": 50, "offset": 0})
    assert [a["name"] for a in found] == [AUTOMATION_NAME]
    (automation,) = found
    trigger = automation["trigger"]
    assert trigger["posture"] == "Proactive" and trigger["within"] == SILENCE_WINDOW_S
    assert automation["actions"] == [
        {
            "type": "change-flow-run-state",
            "name": None,
            "state": "CRASHED",
            "message": CRASH_MESSAGE,
            "force": False,
        }
    ]
    deployment = fleet.server.get(f"/deployments/{fleet.probe_host}")
    assert deployment["job_variables"]["env"] == {HEARTBEAT_ENV: str(HEARTBEAT_FREQUENCY_S)}
    assert "memwall" in deployment["tags"]


def test_a_run_whose_process_is_killed_is_crashed_by_its_worker(fleet: Fleet) -> None:
    run_id = fleet.start_run(SURVIVOR)
    pids = run_processes(run_id)
    # The process that runs the flow (the out-of-memory killer's choice), not the supervisor
    # the worker started it under: the one whose parent belongs to the run too.
    (engine,) = [p for p in pids if parent(p) in pids] or pids
    killed_at = time.monotonic()
    kill([engine])
    wait_for(
        "the killed run to be Crashed",
        lambda: fleet.state(run_id) == "CRASHED",
        60,
        fleet.logs[SURVIVOR],
    )
    print(f"crashed {time.monotonic() - killed_at:.1f} s after the kill, by its worker")
    assert fleet.run(run_id)["state"]["message"].startswith(WORKER_CRASH)


def test_runs_whose_host_dies_are_crashed_by_the_automation_within_the_bound(
    fleet: Fleet,
) -> None:
    live = fleet.start_run(SURVIVOR)
    live_since = time.monotonic()
    doomed = {"probe-host": fleet.start_run(DOOMED), "served audit": fleet.start_served_audit()}
    hosts = {group: tree(fleet.groups[group]) for group in (DOOMED, SERVED)}
    heartbeat = f"{HEARTBEAT_ENV}={HEARTBEAT_FREQUENCY_S}".encode()
    for group, pids in hosts.items():
        # Each run's processes were started with the automation's heartbeat rate.
        assert any(heartbeat in environment(pid) for pid in pids[1:]), group
    # The hosts go down: the worker and `memwall serve` first, so that nothing sees their
    # runs die, then everything they started.
    for group, pids in hosts.items():
        os.killpg(fleet.groups[group], signal.SIGKILL)
        kill(pids)
    killed_at = time.monotonic()
    wait_for(
        "the dead hosts' processes to be gone",
        lambda: not any(alive(pid) for pids in hosts.values() for pid in pids),
        10,
        None,
    )
    for what, run_id in doomed.items():
        assert fleet.state(run_id) == "RUNNING", what
    for what, run_id in doomed.items():
        wait_for(
            f"the dead host's {what} run to be Crashed",
            partial(fleet.has_state, run_id, "CRASHED"),
            CRASH_BOUND_S - (time.monotonic() - killed_at),
            fleet.server.log,
        )
        print(f"{what}: Crashed {time.monotonic() - killed_at:.1f} s after the kill")
        assert fleet.run(run_id)["state"]["message"] == CRASH_MESSAGE
    # The live run, as silent in its work, has sent heartbeats all along: past the window it
    # is still Running (with Prefect's default 180 s interval it would have been crashed).
    time.sleep(max(0.0, SILENCE_WINDOW_S + 10 - (time.monotonic() - live_since)))
    assert fleet.state(live) == "RUNNING", fleet.run(live)["state"]
