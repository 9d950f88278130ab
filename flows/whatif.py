"""The ``whatif`` flow: one projection per roadmap scenario, compared in a PDF.

Run ad hoc before a purchase ("32 B300 for edge, or a second Rubin rack for inference?"):
from the CLI without a server (``memwall whatif``), or as the ``whatif`` deployment on a
Prefect server, where the comparison also lands as artifacts in the UI.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.artifacts import whatif_markdown, whatif_table_rows
from hardware_profiles.months import month_start, this_month
from hardware_profiles.parquet import read_table
from hardware_profiles.provenance import bought_in_window, named_models, unconfirmed_models
from hardware_profiles.roadmaps import baseline_name
from hardware_profiles.schema import MEASUREMENTS
from reports.whatif import WhatIfReport, headline, write_whatif_pdf
from tasks.analysis.projection.horizon import DEFAULT_HORIZON_MONTHS
from tasks.analysis.scenarios.whatif import compare
from tasks.analysis.supply.calibration import (
    DEFAULT_BANDWIDTH_EFFICIENCY,
    DEFAULT_FLOPS_EFFICIENCY,
    calibrate,
)
from tasks.profiles import load_scenarios, require_alternatives
from tasks.published_backtest import published_backtest

DEFAULT_OUT_DIR = "memwall-reports"


@dataclass(frozen=True)
class WhatIfOutcome:
    pdf_path: Path
    headline: str
    comparison: list[dict[str, object]]


def compare_scenarios(
    workloads: str | None,
    roadmap: str | None,
    catalog: str | None,
    measurements: str | None,
    start: dt.date,
    horizon_months: int,
    bandwidth_efficiency: float,
    flops_efficiency: float,
    out_dir: str,
) -> WhatIfOutcome:
    """Load, calibrate, project every scenario and write the comparison PDF."""
    scenarios = load_scenarios(workloads, roadmap, catalog)
    require_alternatives(scenarios)
    base = next(iter(scenarios.values()))
    measured = read_table(measurements, MEASUREMENTS) if measurements else None
    calibrated = calibrate(
        base.catalog,
        measured,
        bandwidth_efficiency=bandwidth_efficiency,
        flops_efficiency=flops_efficiency,
        fitted=published_backtest(base.catalog).fitted,
    )
    comparison, results = compare(scenarios, calibrated, start, horizon_months)
    now = dt.datetime.now(dt.UTC)
    run_id = f"{now:%Y%m%dT%H%M%SZ}"
    months = results[0].projection.months
    unconfirmed = {
        name: named_models(unsure)
        for name, profiles in scenarios.items()
        if not (
            unsure := unconfirmed_models(
                bought_in_window(profiles.roadmap, profiles.catalog, months[0], len(months))
            )
        ).empty
    }
    report = WhatIfReport(
        run_id=run_id,
        generated_at=now,
        months=results[0].projection.months,
        baseline=baseline_name(list(scenarios)),
        comparison=comparison,
        rankings={r.name: r.ranked.ranking for r in results},
        unconfirmed=unconfirmed,
        sources={
            "Workloads": base.workloads_source,
            "Roadmap": base.roadmap_source,
            "Catalog": base.catalog_source,
            "Efficiency defaults": f"bandwidth {bandwidth_efficiency:.2f}, "
            f"compute {flops_efficiency:.2f}",
        },
    )
    path = write_whatif_pdf(report, Path(out_dir) / f"memwall-whatif-{run_id}.pdf")
    rows = [
        {str(k): v for k, v in row.items()}
        for row in comparison.astype(object).where(comparison.notna(), None).to_dict("records")
    ]
    return WhatIfOutcome(path, headline(report), rows)


@flow(name="whatif")
def whatif(
    workloads: str | None = None,
    roadmap: str | None = None,
    catalog: str | None = None,
    measurements: str | None = None,
    start: dt.date | None = None,
    horizon_months: int = DEFAULT_HORIZON_MONTHS,
    bandwidth_efficiency: float = DEFAULT_BANDWIDTH_EFFICIENCY,
    flops_efficiency: float = DEFAULT_FLOPS_EFFICIENCY,
    out_dir: str = DEFAULT_OUT_DIR,
) -> WhatIfOutcome:
    """Compare the roadmap's scenarios; paths left out use the built-in examples."""
    first = month_start(start) if start else this_month()
    outcome = compare_scenarios(
        workloads,
        roadmap,
        catalog,
        measurements,
        first,
        horizon_months,
        bandwidth_efficiency,
        flops_efficiency,
        out_dir,
    )
    create_markdown_artifact(
        key="memwall-whatif",
        markdown=whatif_markdown(outcome.headline, outcome.pdf_path),
        description="Roadmap scenarios compared",
    )
    create_table_artifact(
        key="memwall-whatif-comparison",
        table=whatif_table_rows(outcome.comparison),
        description="One row per scenario against the baseline",
    )
    return outcome
