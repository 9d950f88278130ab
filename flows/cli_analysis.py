"""``memwall rank`` and ``memwall whatif``: the projection and ranking without probing.

Both read the same profiles as ``memwall audit`` and run the same code; neither starts Prefect.
Calibration uses a measurements file where one is given (``--measurements``, as written by an
audit), else the defaults fitted on the published runs (``memwall backtest``), else the
STREAM-based default efficiencies, which ``--bandwidth-efficiency`` and ``--flops-efficiency``
override.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from flows.cli_common import (
    CatalogOption,
    RoadmapOption,
    WorkloadsOption,
    print_json,
    stderr,
    warn,
)
from flows.timings import STARTED, Stopwatch
from hardware_profiles.months import parse_month, this_month

MeasurementsOption = Annotated[
    Path | None,
    typer.Option(
        "--measurements",
        help="Measurements Parquet file from an audit: its efficiencies replace the defaults "
        "for the models it measured.",
        dir_okay=False,
    ),
]
StartOption = Annotated[
    str | None,
    typer.Option("--start", help="First month of the projection, YYYY-MM (default: this month)."),
]
HorizonOption = Annotated[
    int, typer.Option("--horizon-months", help="Months to project, 1 to 120.")
]
BandwidthEfficiencyOption = Annotated[
    float,
    typer.Option(
        "--bandwidth-efficiency",
        help="Bandwidth efficiency for models and phases neither measured nor fitted on "
        "published runs, in (0, 1].",
    ),
]
FlopsEfficiencyOption = Annotated[
    float,
    typer.Option(
        "--flops-efficiency",
        help="Compute efficiency for models and phases neither measured nor fitted on "
        "published runs, in (0, 1].",
    ),
]


ScenarioOption = Annotated[
    str | None,
    typer.Option(
        "--scenario",
        help="Roadmap scenario to use (default: 'baseline', the rows no scenario names).",
    ),
]


def start_month(value: str | None) -> dt.date:
    """``--start``: the month it gives, this month when not given."""
    return this_month() if value is None else parse_month(value, "--start")


def _missing(value: object) -> bool:
    return value is None or value != value  # NaN is the one value unequal to itself


def rank(
    workloads: WorkloadsOption = None,
    roadmap: RoadmapOption = None,
    catalog: CatalogOption = None,
    measurements: MeasurementsOption = None,
    start: StartOption = None,
    horizon_months: HorizonOption = 18,
    scenario: ScenarioOption = None,
    bandwidth_efficiency: BandwidthEfficiencyOption = 0.85,
    flops_efficiency: FlopsEfficiencyOption = 0.70,
    prometheus: Annotated[
        str | None,
        typer.Option(
            "--prometheus",
            help="Prometheus with the serving telemetry: the decode efficiency measured in "
            "production over the last 7 days (memwall observe) comes first; unreachable: one "
            "warning line, the other sources stand.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the ranking as JSON rows.")
    ] = False,
) -> None:
    """Project the workloads month by month and rank which starve of memory bandwidth first.

    Starvation is the first month a workload's headroom (supply over demand) drops below 1 while
    it is memory-bound; each workload's best mitigation and the months it buys are shown, with
    its P10-P90 band, and the first wall it hits (bandwidth = starvation, capacity: its batch
    does not fit a replica, latency: batch 1 misses its target, compute; network: a training
    job's collectives outlast its compute) with the month. With --json, one row per workload:
    workload_id, rank, starve_month, starve_month_p10, starve_month_p90 (YYYY-MM or null),
    bound, utilization_now, min_headroom (null when never served), best_mitigation,
    months_gained, served_from (first month its pool holds hardware; null: unserved in the
    horizon), wall, wall_month, devices_per_replica, max_batch (null where unknown or
    unbounded), served_batch (the batch its supply is evaluated at where its latency target caps
    it below its own; null: its own batch), wall_month_p10, wall_month_p90 (the wall month's
    band; null for capacity and latency walls), step_time_s (a training job's step; null
    otherwise). A training workload with a layout is ranked as one job: bound is what binds its
    step (memory, network, compute), utilization_now its MFU, its wall capacity, network,
    bandwidth or compute, devices_per_replica and replica_layout the job's. Each stage's seconds
    go to standard error as one line, {"timings": {...}}.
    """
    # Only what the ranking needs, until it is ranked: the table's modules (reportlab for the
    # shared styles, scipy for the demand fits) cost a --json run nothing.
    from hardware_profiles.parquet import read_table
    from hardware_profiles.schema import MEASUREMENTS
    from tasks.analysis.projection.projector import project
    from tasks.analysis.ranking.ranking import rank as rank_projection
    from tasks.analysis.ranking.ranking import ranking_rows
    from tasks.analysis.supply.calibration import calibrate
    from tasks.analysis.supply.replicas import missing_interconnect
    from tasks.profiles import load_scenarios, pick_scenario
    from tasks.published_backtest import published_backtest

    watch = Stopwatch(STARTED)
    watch.lap("start-up")
    first = start_month(start)
    _, profiles = pick_scenario(load_scenarios(workloads, roadmap, catalog), scenario)
    measured = read_table(measurements, MEASUREMENTS) if measurements else None
    watch.lap("load")
    production = None
    if prometheus:
        from tasks.observe import observe
        from tasks.prometheus import PrometheusUnreachable

        try:
            seen, _ = observe({"": prometheus}, profiles.workloads, profiles.catalog)
            production = seen.production_efficiencies()
        except PrometheusUnreachable as exc:
            warn(f"{exc}: no production efficiency, the other sources stand")
        watch.lap("production telemetry")
    calibrated = calibrate(
        profiles.catalog,
        measured,
        bandwidth_efficiency=bandwidth_efficiency,
        flops_efficiency=flops_efficiency,
        fitted=published_backtest(profiles.catalog).fitted,
        production=production,
    )
    watch.lap("calibrate")
    projection = project(
        profiles.workloads,
        profiles.roadmap,
        calibrated,
        first,
        horizon_months,
        workloads_source=profiles.workloads_source,
        roadmap_source=profiles.roadmap_source,
        catalog=profiles.catalog,
    )
    watch.lap("project")
    ranked = rank_projection(projection, catalog=profiles.catalog)
    watch.lap("rank")
    missing = missing_interconnect(profiles.catalog, projection.fleet.models)
    if missing:
        warn(
            f"no interconnect bandwidth in the catalog for {', '.join(missing)}: replicas on "
            "them are timed without tensor-parallel communication (a lower bound)"
        )
    if as_json:
        rows = ranking_rows(ranked.ranking)
        watch.lap("rows")
        print_json(rows, timings=watch.timings())
        return
    from rich.console import Console
    from rich.table import Table

    from reports.accuracy import row_likely
    from reports.cells import times
    from reports.story import headline
    from reports.walls import wall_label
    from tasks.analysis.findings import gather
    from tasks.analysis.ranking.ranking import records

    found = gather(projection, ranked, calibrated, profiles.catalog, profiles.roadmap)
    table = Table(title=headline(found), title_justify="left", show_lines=False)
    columns = (
        "#",
        "workload",
        "pool",
        "bound",
        "util.",
        "min headroom",
        "starves",
        "wall",
        "best fix",
    )
    for column in columns:
        wraps = column in ("workload", "best fix")
        table.add_column(column, overflow="fold", no_wrap=not wraps, ratio=3 if wraps else None)
    for r in records(ranked.ranking):
        fix = "–" if _missing(r.best_mitigation) else f"{r.best_mitigation} (+{r.months_gained} mo)"
        table.add_row(
            str(r.rank),
            str(r.name),
            str(r.pool),
            str(r.bound),
            f"{100 * r.utilization_now:.1f} %",
            times(r.min_headroom),
            row_likely(r),
            wall_label(r),
            fix,
        )
    Console(highlight=False, markup=False).print(table)


def whatif(
    workloads: WorkloadsOption = None,
    roadmap: RoadmapOption = None,
    catalog: CatalogOption = None,
    measurements: MeasurementsOption = None,
    start: StartOption = None,
    horizon_months: HorizonOption = 18,
    bandwidth_efficiency: BandwidthEfficiencyOption = 0.85,
    flops_efficiency: FlopsEfficiencyOption = 0.70,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the comparison PDF.", file_okay=False)
    ] = Path("memwall-reports"),
) -> None:
    """Compare roadmap scenarios (a roadmap with a 'scenario' column; rows without one are
    shared by all): per scenario, how many workloads starve, which it rescues against the
    baseline, the months gained and the cost. Writes a PDF; the last line is its path."""
    from flows.whatif import compare_scenarios

    outcome = compare_scenarios(
        str(workloads) if workloads else None,
        str(roadmap) if roadmap else None,
        str(catalog) if catalog else None,
        str(measurements) if measurements else None,
        start_month(start),
        horizon_months,
        bandwidth_efficiency,
        flops_efficiency,
        str(out),
    )
    stderr.print(outcome.headline, markup=False)
    print(outcome.pdf_path)
