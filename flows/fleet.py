"""A fleet on Prefect's own machinery: one work pool, one work queue and one worker per host.

``probe-host`` runs on a host's worker: it measures that host and writes the rows to shared
storage (a path every host mounts, or an fsspec URL), so they outlive Prefect's database.
``fleet-audit`` fans ``probe-host`` out to every host's queue with ``run_deployment`` and builds
one report from the hosts that answered. It never waits on a host that cannot answer: a queue
no worker has polled lately is skipped up front, and a run that overstays its time-out is sent
a Cancelling state (the worker then stops it; a forced Cancelled would leave the process
running) and the host is marked as timed out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, cast
from uuid import UUID

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext

from flows.artifacts import md, publish_pdf_link
from flows.audit import (
    DEFAULT_OUT_DIR,
    analyse,
    discover_task,
    load_profiles_task,
    new_run_id,
    probe_task,
)
from flows.finish import (
    DeliverySettings,
    HistoryOutcome,
    check_delivery,
    check_history_task,
    deliver,
    record,
)
from flows.progress import announce
from hardware_profiles.catalog import load_catalog
from hardware_profiles.errors import MemwallError
from hardware_profiles.months import month_start
from hardware_profiles.schema import MEASUREMENTS, Accelerator
from reports.build import write_pdf
from reports.content import AuditReport
from reports.fleet import ANSWERED, FAILED, SKIPPED, TIMED_OUT, HostResult, fleet_section
from tasks.analysis.health import DEFAULT_STRAGGLER_FRACTION
from tasks.analysis.projection.horizon import DEFAULT_HORIZON_MONTHS
from tasks.analysis.supply.calibration import DEFAULT_BANDWIDTH_EFFICIENCY, DEFAULT_FLOPS_EFFICIENCY
from tasks.demand import file_provenance
from tasks.hostlock import probing
from tasks.probes.runner import ProbePlan
from tasks.probes.software import software_versions
from tasks.replay import recording, replayed
from tasks.storage import join, read_parquet, write_parquet

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun, State

PROBE_HOST_DEPLOYMENT: Final = "probe-host/probe-host"
DEFAULT_WORK_POOL: Final = "memwall"
# Every process work pool has this queue; hosts get queues of their own.
DEFAULT_QUEUE: Final = "default"
DEFAULT_HOST_TIMEOUT_S: Final = 1800.0
# A worker polls its queue every PREFECT_WORKER_QUERY_SECONDS (10 s by default); a queue not
# polled for this long has no live worker.
DEFAULT_LIVE_WITHIN_S: Final = 90.0
_POLL_S: Final = 2.0
# Flow runs read per query: the server's default page (PREFECT_API_DEFAULT_LIMIT).
_PAGE: Final = 200


class FleetError(MemwallError):
    """A fleet audit that cannot start or has nothing to report."""


def host_measurements_location(storage: str, run_id: str, host: str) -> str:
    return join(storage, "runs", run_id, f"{host}.parquet")


def _absolute(storage: str) -> str:
    """A relative path means nothing to a worker, which runs in a directory of its own."""
    return storage if "://" in storage else str(Path(storage).resolve())


@flow(name="probe-host")
def probe_host(
    storage: str,
    run_id: str,
    host: str | None = None,
    quick: bool = False,
    catalog: str | None = None,
) -> str:
    """Measure this host's accelerators and write the rows to shared storage.

    ``host`` names the host in the rows (the fleet audit passes the queue's name); this
    machine's hostname where left out. Returns where the rows were written. A host whose
    worker sets ``$MEMWALL_REPLAY_MEASUREMENTS`` replays that recording instead of measuring
    (tasks.replay: the fleet's load test, fifty hosts on one machine).
    """
    name = host or socket.gethostname()
    if not name or "/" in name:
        raise FleetError(f"host name {name!r} cannot name a file; use letters, digits, - or _")
    recorded = recording()
    if recorded is not None:  # the one fake: a recording stands in for the hardware
        with probing(f"memwall probe-host {run_id}", on_wait=announce):
            measurements = replay_task(recorded, name, run_id)
        return write_parquet(
            measurements, host_measurements_location(storage, run_id, name), MEASUREMENTS
        )
    catalog_frame = load_catalog(catalog)
    accelerators = [dataclasses.replace(a, host=name) for a in discover_task(catalog_frame)]
    plan = ProbePlan.quick() if quick else ProbePlan()
    # The fleet's time-out bounds the wait: a host busy past it is reported timed out.
    with probing(f"memwall probe-host {run_id}", on_wait=announce):
        measurements = pd.concat(
            [probe_task(a, catalog_frame, plan, run_id) for a in accelerators], ignore_index=True
        )
    return write_parquet(
        measurements, host_measurements_location(storage, run_id, name), MEASUREMENTS
    )


@task(cache_policy=NO_CACHE)
def replay_task(location: str, host: str, run_id: str) -> pd.DataFrame:
    announce(f"replaying the recorded measurements {location} instead of probing")
    return replayed(location, host, run_id, dt.datetime.now(dt.UTC))


def _queue_verdicts(
    work_pool: str, hosts: list[str] | None, own_queue: str | None, live_within_s: float
) -> tuple[list[str], list[HostResult]]:
    """(hosts with a live worker, hosts skipped and why)."""
    from prefect import get_client
    from prefect.client.schemas.filters import WorkQueueFilter
    from prefect.client.schemas.objects import WorkQueueStatus
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(work_pool)
        except ObjectNotFound:
            raise FleetError(
                f"no work pool named {work_pool!r}; create it with: "
                f"prefect work-pool create {work_pool} --type process"
            ) from None
        # Explicit filter, limit and offset: the server (fastapi 0.154) rejects the nulls the
        # client sends for them by default.
        found = client.read_work_queues(
            work_pool_name=work_pool, work_queue_filter=WorkQueueFilter(), limit=200, offset=0
        )
        queues = {q.name: q for q in found}
    if hosts is None:
        hosts = sorted(n for n in queues if n not in (DEFAULT_QUEUE, own_queue))
    unknown = [h for h in hosts if h not in queues]
    if unknown:
        raise FleetError(
            f"work pool {work_pool!r} has no queue for host(s) {', '.join(unknown)}; its queues: "
            f"{', '.join(sorted(queues))}"
        )
    if not hosts:
        raise FleetError(
            f"work pool {work_pool!r} has no host queues; add one per host with: prefect "
            f"work-queue create HOST --pool {work_pool}"
        )
    now = dt.datetime.now(dt.UTC)
    live, skipped = [], []
    for host in hosts:
        queue = queues[host]
        polled = queue.last_polled
        if queue.is_paused or queue.status == WorkQueueStatus.PAUSED:
            skipped.append(HostResult(host, SKIPPED, "its work queue is paused"))
        elif polled is None:
            skipped.append(HostResult(host, SKIPPED, "no worker has ever polled its queue"))
        elif (age := (now - polled).total_seconds()) > live_within_s:
            skipped.append(
                HostResult(
                    host,
                    SKIPPED,
                    f"no live worker: its queue was last polled {age:.0f} s ago "
                    f"(live means within {live_within_s:g} s)",
                )
            )
        else:
            live.append(host)
    return live, skipped


@task(cache_policy=NO_CACHE)
def live_hosts_task(
    work_pool: str, hosts: list[str] | None, live_within_s: float
) -> tuple[list[str], list[HostResult]]:
    context = FlowRunContext.get()
    own = context.flow_run.work_queue_name if context and context.flow_run else None
    live, skipped = _queue_verdicts(work_pool, hosts, own, live_within_s)
    for s in skipped:
        announce(f"skipping {s.host}: {s.detail}")
    return live, skipped


def _launch(deployment: str, host: str, parameters: dict[str, object], run_id: str) -> UUID:
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    try:
        child = run_deployment(  # a sync call from a sync flow returns the run itself
            deployment,
            parameters=parameters,
            work_queue_name=host,
            timeout=0,
            flow_run_name=f"probe-{host}-{run_id}",
            tags=["memwall", f"memwall-run:{run_id}"],
        )
    except ObjectNotFound:
        raise FleetError(
            f"no deployment named {deployment!r}; create it with: prefect deploy --name probe-host"
        ) from None
    return cast("FlowRun", child).id


def _wait(
    children: dict[str, UUID], storage: str, run_id: str, timeout_s: float
) -> tuple[list[HostResult], list[pd.DataFrame]]:
    """Follow every child run to its end or its time-out, whichever comes first: one query
    for every pending run's state per tick, not one per host."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.states import Cancelled, Cancelling

    results: list[HostResult] = []
    frames: list[pd.DataFrame] = []
    deadline = time.monotonic() + timeout_s
    pending = dict(children)
    with get_client(sync_client=True) as client:
        while pending:
            states = {}
            ids = list(pending.values())
            for first in range(0, len(ids), _PAGE):
                page = ids[first : first + _PAGE]
                # The sync client sends a sort of None, which the server refuses: name one.
                for flow_run in client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=page)),
                    sort=FlowRunSort.ID_DESC,
                    limit=len(page),
                ):
                    states[flow_run.id] = flow_run.state
            for host, run in list(pending.items()):
                state = states.get(run)
                if state is not None and state.is_final():
                    del pending[host]
                    if state.is_completed():
                        try:
                            frame = read_parquet(
                                host_measurements_location(storage, run_id, host), MEASUREMENTS
                            )
                        except MemwallError as exc:
                            results.append(HostResult(host, FAILED, f"its rows: {exc}"))
                            continue
                        frames.append(frame)
                        devices = frame["device_index"].nunique()
                        results.append(HostResult(host, ANSWERED, "", int(devices)))
                    else:
                        why = (state.message or state.name or "").strip()
                        results.append(HostResult(host, FAILED, f"{state.name}: {why}"))
                    announce(f"{host}: {results[-1].status}")
                elif time.monotonic() > deadline:
                    del pending[host]
                    message = f"memwall: {host} gave no answer within {timeout_s:g} s"
                    # Only a running flow acts on Cancelling (its worker stops the process). A
                    # scheduled or pending run has not started its work: Cancelled ends it at
                    # once, and a process still starting is refused the Running state.
                    started = state is not None and (state.is_running() or state.is_paused())
                    new: State[object] = (
                        Cancelling(message=message) if started else Cancelled(message=message)
                    )
                    client.set_flow_run_state(run, new, force=True)
                    results.append(
                        HostResult(
                            host,
                            TIMED_OUT,
                            f"no answer within {timeout_s:g} s; its run was "
                            f"{'sent a Cancelling state' if started else 'cancelled'}",
                        )
                    )
                    announce(f"{host}: timed out")
            if pending:
                time.sleep(_POLL_S)
    return results, frames


def _accelerators(measurements: pd.DataFrame) -> list[Accelerator]:
    devices = measurements.drop_duplicates(["host", "device_index"])
    return [
        Accelerator(
            host=str(d["host"]),
            device_index=int(str(d["device_index"])),
            platform=str(d["platform"]),
            device_kind=str(d["device_kind"]),
            memory_bytes=None,
            accelerator_id=d["accelerator_id"] if isinstance(d["accelerator_id"], str) else None,
            note=f"on {d['host']}",
        )
        for _, d in devices.iterrows()
    ]


def _hosts_markdown(hosts: list[HostResult]) -> str:
    lines = ["| host | status | devices | detail |", "|---|---|---|---|"]
    lines += [
        f"| {md(h.host)} | {h.status} | {h.devices if h.status == ANSWERED else '–'} | "
        f"{md(h.detail)} |"
        for h in hosts
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class FleetOutcome:
    run_id: str
    pdf_path: Path
    hosts: list[HostResult]
    top_workload: str


@flow(name="fleet-audit")
def fleet_audit(
    work_pool: str = DEFAULT_WORK_POOL,
    hosts: list[str] | None = None,
    storage: str = "memwall-fleet",
    host_timeout_s: float = DEFAULT_HOST_TIMEOUT_S,
    live_within_s: float = DEFAULT_LIVE_WITHIN_S,
    quick: bool = False,
    workloads: str | None = None,
    roadmap: str | None = None,
    catalog: str | None = None,
    out_dir: str | None = None,
    history: str | None = None,
    delivery: DeliverySettings | None = None,
    deployment: str = PROBE_HOST_DEPLOYMENT,
    today: dt.date | None = None,
    straggler_threshold: float = DEFAULT_STRAGGLER_FRACTION,
) -> FleetOutcome:
    """Probe every host of ``work_pool`` (one queue per host) and rank the workloads on the
    measurements of the hosts that answered.

    ``hosts`` defaults to every queue of the pool but ``default`` and the queue this run is on.
    Measurements go to ``<storage>/runs/<run id>/<host>.parquet``, history to
    ``<storage>/history`` and the PDF to ``<storage>/reports`` unless given elsewhere. A
    device more than ``straggler_threshold`` (a fraction) below the median of its model's
    devices in this run is a straggler.
    """
    if not 0 < straggler_threshold < 1:
        raise FleetError(
            "the straggler threshold is a fraction in (0, 1), e.g. 0.05; got "
            f"{straggler_threshold:g}"
        )
    now = dt.datetime.now(dt.UTC)
    run_id = new_run_id(now)
    storage = _absolute(storage)
    delivery = delivery or DeliverySettings()
    check_delivery(delivery)
    start = month_start(today or now.date())
    defaults = {"bandwidth": DEFAULT_BANDWIDTH_EFFICIENCY, "flops": DEFAULT_FLOPS_EFFICIENCY}
    profiles = load_profiles_task(
        workloads, roadmap, catalog, None, start, DEFAULT_HORIZON_MONTHS, defaults
    )
    history = history or join(storage, "history")
    set_aside = check_history_task(history)
    live, skipped = live_hosts_task(work_pool, hosts, live_within_s)

    parameters = {"storage": storage, "run_id": run_id, "quick": quick, "catalog": catalog}
    children = {h: _launch(deployment, h, {**parameters, "host": h}, run_id) for h in live}
    announced = ", ".join(live) or "none"
    announce(f"probing {len(live)} host(s): {announced}")
    answered, frames = _wait(children, storage, run_id, host_timeout_s)
    results = sorted([*answered, *skipped], key=lambda r: r.host)
    create_markdown_artifact(
        key="memwall-fleet-hosts", markdown=_hosts_markdown(results), description="Fleet hosts"
    )
    if not frames:
        raise FleetError(
            "no host answered: " + "; ".join(f"{r.host} {r.status} ({r.detail})" for r in results)
        )
    measurements = pd.concat(frames, ignore_index=True)
    found = analyse(profiles, measurements, start, DEFAULT_HORIZON_MONTHS, defaults)

    report = AuditReport(
        run_id=run_id,
        generated_at=now,
        host=f"fleet {work_pool} ({sum(r.status == ANSWERED for r in results)} hosts)",
        accelerators=_accelerators(measurements),
        measurements=measurements,
        findings=found,
        calibration_defaults=defaults,
        sources={
            "Workloads": profiles.workloads_source,
            "Roadmap": profiles.roadmap_source,
            "Catalog": profiles.catalog_source,
            "Measurements": join(storage, "runs", run_id),
        },
        settings={
            "Probe plan": "quick" if quick else "full",
            "Host time-out": f"{host_timeout_s:g} s",
        },
        software=software_versions(),
        demand=file_provenance(profiles.workloads, f"as written in {profiles.workloads_source}"),
    )
    recorded = record(report, history, set_aside, straggler_threshold)
    local_storage = "://" not in storage
    default_out = Path(storage) / "reports" if local_storage else Path(DEFAULT_OUT_DIR)
    out = Path(out_dir) if out_dir else default_out
    pdf = fleet_report_task(
        report,
        out / f"memwall-fleet-{run_id}.pdf",
        work_pool,
        results,
        recorded,
        straggler_threshold,
    )
    if not local_storage:
        delivery = delivery.model_copy(
            update={"drop_to": [*delivery.drop_to, join(storage, "reports")]}
        )
    if local_storage and not out_dir:
        publish_pdf_link(str(pdf))  # <storage>/reports: a path every host mounts
    deliver(report, pdf, delivery)
    get_run_logger().info("fleet report: %s", pdf)
    return FleetOutcome(run_id, pdf, results, str(found.ranking.iloc[0]["name"]))


@task(cache_policy=NO_CACHE)
def fleet_report_task(
    report: AuditReport,
    path: Path,
    work_pool: str,
    hosts: list[HostResult],
    recorded: HistoryOutcome,
    straggler_threshold: float,
) -> Path:
    announce("writing the fleet PDF")
    front = fleet_section(
        f"memwall fleet audit of {work_pool}",
        hosts,
        recorded.trend,
        report.run_id,
        recorded.notes,
        straggler_threshold,
    )
    return write_pdf(report, path, front)
