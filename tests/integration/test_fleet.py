"""The fleet on a real Prefect server: a process work pool, one queue and one worker per
simulated host, deployments from prefect.yaml, and the fleet audit fanned out over them.

Four hosts have workers: ``alpha`` and ``bravo`` measure this machine's CPU; ``charlie``'s
worker runs with ``JAX_PLATFORMS=tpu`` on a machine without a TPU, so its probe run really
fails; ``echo``'s worker really runs slower (pinned to one core with ``taskset``, at the lowest
priority, XLA on one thread and compiling without optimisation, which makes its triad three to
fifteen times slower: a margin no noise on a shared two-core machine closes, where one core
alone left it within noise of its peers), so the fleet report must name it a straggler.
``delta`` has a queue and no worker. Every "host" is this machine, so they share one probe lock
(as they would share the hardware): their probes take turns instead of measuring each other.
A fifth worker serves the ``control`` queue, where the scheduled ``fleet-audit`` deployment
runs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from hardware_profiles.parquet import read_table
from hardware_profiles.schema import MEASUREMENTS
from tests.integration.conftest import Processes, Server, wait_for
from tests.integration.fleet import CONTROL, Fleet, Worker, start_fleet
from tests.pdf import pdf_text

pytestmark = pytest.mark.integration
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")

WORKING = ("alpha", "bravo")
FAILING = "charlie"
NO_WORKER = "delta"
SLOW = "echo"
SLOW_PREFIX = ["taskset", "-c", "0", "nice", "-n", "19"]
SLOW_ENV = {
    "XLA_FLAGS": (
        "--xla_backend_optimization_level=0"
        " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    ),
    "OMP_NUM_THREADS": "1",
}


@pytest.fixture(scope="module")
def fleet(
    prefect_server: Server, processes: Processes, tmp_path_factory: pytest.TempPathFactory
) -> Fleet:
    workers = {host: Worker() for host in WORKING}
    workers[FAILING] = Worker(env={"JAX_PLATFORMS": "tpu"})
    workers[SLOW] = Worker(prefix=SLOW_PREFIX, env=SLOW_ENV)
    workers[CONTROL] = Worker()
    storage = tmp_path_factory.mktemp("shared-storage")
    return start_fleet(prefect_server, processes, storage, workers, idle_queues=(NO_WORKER,))


def test_fleet_audit_reports_every_host_that_answered(fleet: Fleet) -> None:
    result = fleet.audit(list(WORKING))
    assert result.returncode == 0, result.stderr
    assert "alpha: answered" in result.stderr and "bravo: answered" in result.stderr
    pdf = Path(result.stdout.strip().splitlines()[-1])
    assert pdf.parent == fleet.storage / "reports"
    text = pdf_text(pdf)
    assert "All 2 hosts answered." in text
    assert "alpha answered" in text and "bravo answered" in text
    # Each host wrote its rows to the shared storage, under its own name.
    run_dir = next((fleet.storage / "runs").iterdir())
    for host in WORKING:
        rows = read_table(run_dir / f"{host}.parquet", MEASUREMENTS)
        assert set(rows["host"]) == {host} and {"triad", "matmul"} <= set(rows["probe"])
    # ... and the run went into the fleet's history.
    assert len(list((fleet.storage / "history" / "measurements").glob("*.parquet"))) >= 1


def test_a_host_that_really_runs_slower_is_named_a_straggler(fleet: Fleet) -> None:
    result = fleet.audit([*WORKING, SLOW])
    assert result.returncode == 0, result.stderr
    assert f"{SLOW}: answered" in result.stderr.splitlines()
    pdf = Path(result.stdout.strip().splitlines()[-1])
    text = pdf_text(pdf)
    health = text[text.index("Fleet health") : text.index("Hosts")]
    assert "devices within 5 % of their model's median;" in health
    stragglers = health.split("straggler(s):", 1)[-1]
    assert "straggler(s):" in health and f"{SLOW} cpu #0" in stragglers, health


def test_a_failing_host_is_marked_failed_and_a_host_without_worker_skipped(fleet: Fleet) -> None:
    result = fleet.audit([WORKING[0], FAILING, NO_WORKER])
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert "alpha: answered" in lines
    failed = next(line for line in lines if line.startswith(f"{FAILING}: failed"))
    assert "Unable to initialize backend 'tpu'" in failed
    assert any(
        line.startswith(f"{NO_WORKER}: skipped: no worker has ever polled") for line in lines
    )
    pdf = Path(result.stdout.strip().splitlines()[-1])
    reader_text = pdf_text(pdf)
    first_page = reader_text[: reader_text.index("Drift")]
    assert "1 of 3 hosts answered; this report leaves out charlie (failed), delta (skipped)" in (
        first_page
    )
    assert "charlie failed" in first_page and "delta skipped" in first_page


def test_a_host_past_its_timeout_is_cancelled(fleet: Fleet) -> None:
    # The full probe plan takes minutes on a CPU: the run is surely still going after 15 s.
    result = fleet.audit([WORKING[1]], "--timeout", "15", quick=False)
    # No host answered: there is nothing to report, and the command says why.
    assert result.returncode == 2
    assert "no host answered: bravo timed out (no answer within 15 s" in result.stderr
    assert "Traceback" not in result.stderr
    runs = fleet.server.post(
        "/flow_runs/filter",
        {
            "deployments": {"id": {"any_": [fleet.deployments["probe-host"]]}},
            "flow_runs": {"name": {"like_": "probe-bravo-"}},
            "sort": "EXPECTED_START_TIME_DESC",
            "limit": 1,
            "offset": 0,
        },
    )
    state = runs[0]["state"]["type"]
    assert state in ("CANCELLING", "CANCELLED"), state

    def final() -> str:
        found: str = fleet.server.get(f"/flow_runs/{runs[0]['id']}")["state"]["type"]
        return found

    # The worker acts on Cancelling: it stops the process and the run ends Cancelled.
    wait_for(
        "the timed-out run to be cancelled",
        lambda: final() == "CANCELLED",
        180,
        fleet.logs[WORKING[1]],
    )


def test_the_weekly_cron_deployment_gets_scheduled_runs(fleet: Fleet) -> None:
    deployment = fleet.server.get(f"/deployments/{fleet.deployments['fleet-audit']}")
    schedule = deployment["schedules"][0]["schedule"]
    assert schedule["cron"] == "0 6 * * 1" and schedule["timezone"] == "UTC"

    def scheduled() -> list[Any]:
        found: list[Any] = fleet.server.post(
            "/flow_runs/filter",
            {
                "deployments": {"id": {"any_": [fleet.deployments["fleet-audit"]]}},
                "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
                "limit": 10,
                "offset": 0,
            },
        )
        return found

    wait_for("scheduled fleet-audit runs", lambda: len(scheduled()) > 0, 60, fleet.server.log)
    for run in scheduled():
        when = dt.datetime.fromisoformat(run["expected_start_time"])
        assert when.weekday() == 0 and (when.hour, when.minute) == (6, 0)
        assert when.utcoffset() == dt.timedelta(0)


def test_the_fleet_audit_deployment_runs_the_parent_on_the_control_queue(fleet: Fleet) -> None:
    before = set((fleet.storage / "reports").glob("*.pdf"))
    run = fleet.server.post(
        f"/deployments/{fleet.deployments['fleet-audit']}/create_flow_run",
        {"parameters": {"hosts": [WORKING[0]], "quick": True}},
    )

    def state() -> str:
        found: str = fleet.server.get(f"/flow_runs/{run['id']}")["state"]["type"]
        return found

    wait_for("the fleet-audit run to end", lambda: state() in FINAL, 300, None)
    assert state() == "COMPLETED"
    (pdf,) = set((fleet.storage / "reports").glob("*.pdf")) - before
    assert "All 1 hosts answered." in pdf_text(pdf)
    children = fleet.server.post(
        "/flow_runs/filter",
        {
            "flow_runs": {"parent_flow_run_id": {"any_": [run["id"]]}},
            "limit": 5,
            "offset": 0,
        },
    )
    assert [c["work_queue_name"] for c in children] == [WORKING[0]]
