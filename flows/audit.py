"""The ``audit`` flow: load profiles, discover, probe, calibrate, project, rank, report.

Tasks here only wire: each calls into ``tasks``, ``hardware_profiles`` or ``reports``, where the
work and its tests live. Profiles are loaded and checked against a first projection (on default
efficiencies) before anything is probed, so a bad input fails in a second, not after minutes
of probing.

``quick`` measures what changes from week to week (the probes, at small sizes) and reuses the
last validation of the workload model on this host with the same software from the history,
saying from when; without one it runs one small case. A full audit runs the whole quick set of
validation cases. Each stage's seconds go to the PDF's method page (``flows.timings``).
"""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from reportlab.platypus import PageBreak

from flows.artifacts import publish_audit
from flows.demand import demand_task
from flows.finish import DeliverySettings, check_delivery, check_history_task, deliver, record
from flows.observe import observe_task, predictions_task
from flows.progress import announce
from flows.timings import STARTED, Stopwatch
from hardware_profiles.months import month_start
from hardware_profiles.parquet import write_table
from hardware_profiles.schema import MEASUREMENTS, Accelerator, Profiles
from reports.build import write_pdf
from reports.content import AuditReport
from reports.fleet import drift_section
from reports.selfcheck import selfcheck_section
from reports.story import headline
from tasks.analysis.findings import Findings, gather
from tasks.analysis.projection.horizon import DEFAULT_HORIZON_MONTHS
from tasks.analysis.projection.projector import Projection, project_profiles
from tasks.analysis.ranking.ranking import Ranked, rank
from tasks.analysis.supply.backtest import Backtest
from tasks.analysis.supply.calibration import (
    DEFAULT_BANDWIDTH_EFFICIENCY,
    DEFAULT_FLOPS_EFFICIENCY,
    calibrate,
)
from tasks.analysis.supply.efficiency import Efficiency
from tasks.analysis.supply.production import Observation
from tasks.analysis.supply.selfcheck import Accuracy
from tasks.discovery import discover
from tasks.history import PastValidation, last_validation, read_measurements
from tasks.hostlock import probing
from tasks.probes.runner import ProbePlan, probe_accelerator, probe_all_devices
from tasks.probes.software import software_versions
from tasks.probes.validation import validate_host
from tasks.profiles import load_scenarios, pick_scenario
from tasks.published_backtest import published_backtest

DEFAULT_OUT_DIR = "memwall-reports"


@dataclass(frozen=True)
class AuditOutcome:
    run_id: str
    pdf_path: Path
    measurements_path: Path
    top_workload: str
    headline: str


def new_run_id(now: dt.datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def checked_profiles(
    workloads: str | None,
    roadmap: str | None,
    catalog: str | None,
    scenario: str | None,
    start: dt.date,
    months: int,
    defaults: dict[str, float],
) -> Profiles:
    """The profiles an audit would read, checked as it checks them (a first projection on the
    default efficiencies): what ``memwall serve`` refuses before it schedules anything."""
    _, profiles = pick_scenario(load_scenarios(workloads, roadmap, catalog), scenario)
    calibrated = calibrate(
        profiles.catalog,
        bandwidth_efficiency=defaults["bandwidth"],
        flops_efficiency=defaults["flops"],
    )
    project_profiles(profiles, calibrated, start, months)
    return profiles


@task(cache_policy=NO_CACHE)
def load_profiles_task(
    workloads: str | None,
    roadmap: str | None,
    catalog: str | None,
    scenario: str | None,
    start: dt.date,
    months: int,
    defaults: dict[str, float],
) -> Profiles:
    announce("loading profiles")
    return checked_profiles(workloads, roadmap, catalog, scenario, start, months, defaults)


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


@task(cache_policy=NO_CACHE, task_run_name="probe-all-devices")
def probe_all_task(
    accelerators: list[Accelerator], catalog: pd.DataFrame, plan: ProbePlan, run_id: str
) -> pd.DataFrame:
    return probe_all_devices(accelerators, catalog, plan, run_id, progress=announce)


@task(cache_policy=NO_CACHE, task_run_name="validate-workload-model")
def validate_task(
    accelerators: list[Accelerator],
    catalog: pd.DataFrame,
    run_id: str,
    measurements: pd.DataFrame,
    small: bool = False,
) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    """``memwall validate``'s quick set, predicted from this run's probes (tasks.probes);
    ``small``: its one small case."""
    what = "one small case, none to reuse in the history" if small else "the quick set"
    announce(f"validating the workload model on this host ({what})")
    return validate_host(accelerators, catalog, run_id, True, measurements, announce, small)


@task(cache_policy=NO_CACHE)
def past_validation_task(
    history: str, accelerators: list[Accelerator], software: str
) -> PastValidation | None:
    """The last validation of this host with this software in the history, if any."""
    found = last_validation(
        history, accelerators[0].host, software, {a.device_kind for a in accelerators}
    )
    if found is not None:
        announce(f"reusing the validation of this host and software {validation_origin(found)}")
    return found


def validation_origin(found: PastValidation) -> str:
    """Where reused validation cases come from, in words."""
    return f"from run {found.run_id} ({found.recorded_at:%Y-%m-%d %H:%M} UTC)"


@task(cache_policy=NO_CACHE)
def backtest_task(catalog: pd.DataFrame) -> Backtest:
    announce("checking the model against published measured runs")
    return published_backtest(catalog)


@task(cache_policy=NO_CACHE)
def calibrate_task(
    catalog: pd.DataFrame,
    measurements: pd.DataFrame,
    defaults: dict[str, float],
    backtest: Backtest,
    history: pd.DataFrame | None = None,
    production: Mapping[tuple[str, str], Efficiency] | None = None,
) -> pd.DataFrame:
    announce("calibrating the catalog")
    return calibrate(
        catalog,
        measurements,
        bandwidth_efficiency=defaults["bandwidth"],
        flops_efficiency=defaults["flops"],
        fitted=backtest.fitted,
        history=history,
        production=production,
    )


@task(cache_policy=NO_CACHE)
def project_task(
    profiles: Profiles, calibrated: pd.DataFrame, start: dt.date, months: int
) -> Projection:
    announce(f"projecting {len(profiles.workloads)} workload(s) over {months} months")
    return project_profiles(profiles, calibrated, start, months)


@task(cache_policy=NO_CACHE)
def rank_task(projection: Projection, catalog: pd.DataFrame) -> Ranked:
    announce("ranking workloads and trying mitigations")
    return rank(projection, catalog=catalog)


def validation_setting(quick: bool, reused: PastValidation | None) -> str:
    """What the audit did to check the workload model on this host, for the method page."""
    if reused is not None:
        return (
            f"reused {validation_origin(reused)}, the last of this host and software "
            "(a quick audit measures the probes and reuses the model's check)"
        )
    if quick:
        return "one small case (no earlier validation of this host and software to reuse)"
    return "the quick set of memwall validate"


def analyse(
    profiles: Profiles,
    measurements: pd.DataFrame,
    start: dt.date,
    months: int,
    defaults: dict[str, float],
    history: pd.DataFrame | None = None,
    production: Mapping[tuple[str, str], Efficiency] | None = None,
) -> Findings:
    """Calibrate on the measurements (and the workload probes of earlier runs in
    ``history``, and what ``production`` measured first of all), project, rank and gather
    what the report shows: the stages every audit (one host or a fleet) runs once it has
    measurements."""
    backtest = backtest_task(profiles.catalog)
    calibrated = calibrate_task(
        profiles.catalog, measurements, defaults, backtest, history, production
    )
    projection = project_task(profiles, calibrated, start, months)
    ranked = rank_task(projection, profiles.catalog)
    return gather(
        projection,
        ranked,
        calibrated,
        profiles.catalog,
        profiles.roadmap,
        measurements,
        backtest=backtest,
    )


@task(cache_policy=NO_CACHE)
def report_task(
    report: AuditReport,
    path: Path,
    trend: pd.DataFrame,
    notes: list[str] | None = None,
    checked: Accuracy | None = None,
) -> Path:
    announce("writing the PDF")
    back = [PageBreak(), *drift_section(trend, report.run_id, notes)]
    if checked is not None:
        back += selfcheck_section(checked)
    return write_pdf(report, path, back=back)


@task(cache_policy=NO_CACHE)
def artifacts_task(
    found: Findings, pdf_path: Path, run_id: str, production: Observation | None = None
) -> None:
    """A markdown summary and the ranking table, for the Prefect UI (flows/artifacts.py)."""
    publish_audit(found, headline(found), pdf_path, run_id, production)


@flow(name="audit")
def audit(
    workloads: str | None = None,
    roadmap: str | None = None,
    catalog: str | None = None,
    out_dir: str = DEFAULT_OUT_DIR,
    quick: bool = False,
    today: dt.date | None = None,
    horizon_months: int = DEFAULT_HORIZON_MONTHS,
    scenario: str | None = None,
    bandwidth_efficiency: float = DEFAULT_BANDWIDTH_EFFICIENCY,
    flops_efficiency: float = DEFAULT_FLOPS_EFFICIENCY,
    history: str | None = None,
    delivery: DeliverySettings | None = None,
    prometheus: str | None = None,
    wait_for_host: bool = True,
) -> AuditOutcome:
    """Audit this host: measure its accelerators, project the workloads over the roadmap and
    rank which starve first. Paths left out use the built-in catalog and example profiles;
    the efficiencies stand in for models this run does not measure. The run is appended to
    ``history`` (default ``<out_dir>/history``) and the PDF delivered as ``delivery`` says.
    With ``prometheus``, workloads with a ``demand_query`` take their demand from it.
    Probing holds the host's probe lock; ``wait_for_host=False`` fails at once if it is held."""
    watch = Stopwatch(STARTED)
    watch.lap("start-up (imports, Prefect)")
    now = dt.datetime.now(dt.UTC)
    run_id = new_run_id(now)
    delivery = delivery or DeliverySettings()
    check_delivery(delivery)
    start = month_start(today or now.date())
    defaults = {"bandwidth": bandwidth_efficiency, "flops": flops_efficiency}
    profiles = load_profiles_task(
        workloads, roadmap, catalog, scenario, start, horizon_months, defaults
    )
    out = Path(out_dir)
    history = history or str(out / "history")
    set_aside = check_history_task(history, out_dir)
    profiles, demand, answered = demand_task(profiles, prometheus)
    observation = observe_task(profiles, prometheus if answered else None)
    watch.lap("profiles and history")
    accelerators = discover_task(profiles.catalog)
    software = software_versions()
    reused = past_validation_task(history, accelerators, software) if quick else None
    plan = ProbePlan.for_platform(accelerators[0].platform, quick=quick)
    watch.lap("discovery")
    with probing(f"memwall audit {run_id}", wait=wait_for_host, on_wait=announce):
        watch.lap("waiting for the host's probe lock")
        frames = [probe_task(a, profiles.catalog, plan, run_id) for a in accelerators]
        if len(accelerators) > 1:
            frames.append(probe_all_task(accelerators, profiles.catalog, plan, run_id))
        measurements = pd.concat(frames, ignore_index=True)
        watch.lap("probes")
        if reused is None:
            checked, validation = validate_task(
                accelerators, profiles.catalog, run_id, measurements, small=quick
            )
            measurements = pd.concat([measurements, checked], ignore_index=True)
        else:
            validation = reused.records
        watch.lap("validation")
    found = analyse(
        profiles,
        measurements,
        start,
        horizon_months,
        defaults,
        read_measurements(history),
        production=None if observation is None else observation.production_efficiencies(),
    )
    predictions = predictions_task(profiles, observation, found)
    watch.lap("published runs, calibration, projection, ranking")

    measurements_path = write_table(
        measurements, out / f"memwall-measurements-{run_id}.parquet", MEASUREMENTS
    )
    report = AuditReport(
        run_id=run_id,
        generated_at=now,
        host=socket.gethostname(),
        findings=found,
        accelerators=accelerators,
        measurements=measurements,
        calibration_defaults=defaults,
        sources={
            "Workloads": profiles.workloads_source,
            "Roadmap": profiles.roadmap_source,
            "Catalog": profiles.catalog_source,
        },
        settings={
            "Probe plan": "quick" if quick else "full",
            "Repetitions": plan.repetitions,
            "Matmul sizes": ", ".join(str(n) for n in plan.matmul_sizes),
            "Validation": validation_setting(quick, reused),
        },
        software=software,
        demand=demand,
        production=observation,
        predictions=predictions,
        validation=validation,
        validation_from=reused,
        timings=watch.laps,
    )
    recorded = record(report, history, set_aside)
    pdf_path = report_task(
        report,
        out / f"memwall-audit-{run_id}.pdf",
        recorded.trend,
        recorded.notes,
        recorded.accuracy,
    )
    artifacts_task(found, pdf_path, run_id, observation)
    deliver(report, pdf_path, delivery)
    return AuditOutcome(
        run_id=run_id,
        pdf_path=pdf_path,
        measurements_path=measurements_path,
        top_workload=str(found.ranking.iloc[0]["name"]),
        headline=headline(found),
    )
