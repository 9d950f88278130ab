"""A fleet on a real Prefect server, as the README's fleet section sets one up: a process work
pool, a queue per simulated host, `memwall deploy`, and a real process worker per queue that
has one. Every "host" is this machine, so they share one probe lock (as they would share the
hardware): their probes take turns instead of measuring each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tests.integration.conftest import BIN, REPO, Processes, Server, memwall, prefect, wait_for

POOL = "memwall"
CONTROL = "control"  # the queue the fleet-audit parent runs on


@dataclass(frozen=True)
class Worker:
    """How one host's worker runs: a command prefix (taskset, nice) and environment."""

    prefix: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


class Fleet:
    def __init__(
        self, server: Server, storage: Path, deployments: dict[str, str], logs: dict[str, Path]
    ) -> None:
        self.server = server
        self.storage = storage
        self.deployments = deployments
        self.logs = logs

    def audit(self, hosts: list[str], *extra: str, quick: bool = True) -> Any:
        args = ["fleet", "--pool", POOL, "--storage", str(self.storage)]
        args += ["--quick"] if quick else []
        for host in hosts:
            args += ["--host", host]
        return memwall([*args, *extra], self.server.client_env, self.storage)


def _polled(server: Server, queue: str) -> bool:
    found = server.get(f"/work_pools/{POOL}/queues/{queue}")
    return found.get("last_polled") is not None


def start_fleet(
    server: Server,
    processes: Processes,
    storage: Path,
    workers: dict[str, Worker],
    idle_queues: tuple[str, ...] = (),
) -> Fleet:
    """The pool, a queue for each of `workers` and `idle_queues`, the deployments, and a
    worker on each of `workers`' queues, every one polling before this returns."""
    env = server.client_env
    prefect(["work-pool", "create", POOL, "--type", "process"], env)
    for queue in (*workers, *idle_queues):
        server.post(f"/work_pools/{POOL}/queues", {"name": queue})
    deployed = memwall(["deploy"], {**env, "MEMWALL_STORAGE": str(storage)}, REPO)
    assert deployed.returncode == 0, deployed.stderr
    assert "deployed fleet-audit (flows.fleet.fleet_audit) to pool memwall: cron 0 6 * * 1 UTC" in (
        deployed.stderr
    )
    assert "deployed whatif (flows.whatif.whatif) to pool memwall: ad hoc" in deployed.stderr
    ids = deployed.stdout.split()
    logs = {}
    lock = {"MEMWALL_PROBE_LOCK": str(storage / "probe.lock")}
    for queue, worker in workers.items():
        command = [str(BIN / "prefect"), "worker", "start", "--pool", POOL]
        command += ["--work-queue", queue, "--name", f"worker-{queue}"]
        logs[queue] = processes.start(
            f"worker-{queue}",
            [*worker.prefix, *command],
            {**env, **lock, "JAX_PLATFORMS": "cpu", **worker.env},
        )
    for queue, log in logs.items():
        wait_for(f"worker for {queue}", partial(_polled, server, queue), 120, log)
    return Fleet(
        server,
        storage,
        dict(zip(["probe-host", "fleet-audit", "whatif"], ids, strict=True)),
        logs,
    )
