"""The ``audit`` flow: discover, probe, load profiles, calibrate, rank, report.

Tasks here only wire: each calls into ``tasks``, ``hardware_profiles`` or ``reports``, where the
work and its tests live. Profiles are loaded first so a bad input file fails in a second, not
after minutes of probing.
"""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.finish import DeliverySettings, check_delivery, finish
from flows.progress import announce
from hardware_profiles.parquet import write_table
from hardware_profiles.profiles import Profiles, load_profiles
from hardware_profiles.schema import MEASUREMENTS, Accelerator
from reports.build import write_pdf
from reports.story import AuditReport
from tasks.analysis.calibration import (
    DEFAULT_BANDWIDTH_EFFICIENCY,
    DEFAULT_FLOPS_EFFICIENCY,
    calibrate,
)
from tasks.analysis.roofline import rank_by_utilization, roofline_today
from tasks.discovery import discover
from tasks.probes.runner import ProbePlan, probe_accelerator, software_versions

DEFAULT_OUT_DIR = "memwall-reports"


@dataclass(frozen=True)
class AuditOutcome:
    run_id: str
    pdf_path: Path
    measurements_path: Path
    top_workload: str


def new_run_id(now: dt.datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


@task(cache_policy=NO_CACHE)
def load_profiles_task(workloads: str | None, roadmap: str | None, catalog: str | None) -> Profiles:
    announce("loading profiles")
    return load_profiles(workloads, roadmap, catalog)


@task(cache_policy=NO_CACHE)
def discover_task(catalog: pd.DataFrame) -> list[Accelerator]:
    found = discover(catalog)
    announce(f"found {len(found)} device(s): {', '.join(a.device_kind for a in found)}")
    return found


@task(
    cache_policy=NO_CACHE,
    task_run_name="probe-{accelerator.device_kind}-{accelerator.device_index}",
)
def probe_task(
    accelerator: Accelerator, catalog: pd.DataFrame, plan: ProbePlan, run_id: str
) -> pd.DataFrame:
    return probe_accelerator(accelerator, catalog, plan, run_id, progress=announce)


@task(cache_policy=NO_CACHE)
def rank_task(profiles: Profiles, measurements: pd.DataFrame, today: dt.date) -> pd.DataFrame:
    announce("ranking workloads")
    calibrated = calibrate(profiles.catalog, measurements)
    roofline = roofline_today(
        profiles.workloads, profiles.roadmap, calibrated, today, profiles.workloads_source
    )
    return rank_by_utilization(roofline)


@task(cache_policy=NO_CACHE)
def report_task(report: AuditReport, path: Path) -> Path:
    announce("writing the PDF")
    return write_pdf(report, path)


@flow(name="audit")
def audit(
    workloads: str | None = None,
    roadmap: str | None = None,
    catalog: str | None = None,
    out_dir: str = DEFAULT_OUT_DIR,
    quick: bool = False,
    today: dt.date | None = None,
    history: str | None = None,
    delivery: DeliverySettings | None = None,
) -> AuditOutcome:
    """Audit this host: measure its accelerators and rank the workloads on the roadmap.

    Paths left out use the built-in catalog and example profiles. The run is appended to
    ``history`` (default ``<out_dir>/history``) and the PDF delivered as ``delivery`` says.
    """
    now = dt.datetime.now(dt.UTC)
    run_id = new_run_id(now)
    delivery = delivery or DeliverySettings()
    check_delivery(delivery)
    profiles = load_profiles_task(workloads, roadmap, catalog)
    accelerators = discover_task(profiles.catalog)
    plan = ProbePlan.quick() if quick else ProbePlan()
    measurements = pd.concat(
        [probe_task(a, profiles.catalog, plan, run_id) for a in accelerators], ignore_index=True
    )
    ranking = rank_task(profiles, measurements, today or now.date())

    out = Path(out_dir)
    measurements_path = write_table(
        measurements, out / f"memwall-measurements-{run_id}.parquet", MEASUREMENTS
    )
    report = AuditReport(
        run_id=run_id,
        generated_at=now,
        host=socket.gethostname(),
        accelerators=accelerators,
        measurements=measurements,
        ranking=ranking,
        calibration_defaults={
            "bandwidth": DEFAULT_BANDWIDTH_EFFICIENCY,
            "flops": DEFAULT_FLOPS_EFFICIENCY,
        },
        sources={
            "Workloads": profiles.workloads_source,
            "Roadmap": profiles.roadmap_source,
            "Catalog": profiles.catalog_source,
        },
        settings={
            "Probe plan": "quick" if quick else "full",
            "Repetitions": plan.repetitions,
            "Matmul sizes": ", ".join(str(n) for n in plan.matmul_sizes),
        },
        software=software_versions(),
    )
    pdf_path = report_task(report, out / f"memwall-audit-{run_id}.pdf")
    finish(report, pdf_path, history or str(out / "history"), delivery)
    return AuditOutcome(
        run_id=run_id,
        pdf_path=pdf_path,
        measurements_path=measurements_path,
        top_workload=str(ranking.iloc[0]["name"]),
    )
