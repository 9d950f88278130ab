"""The PDF's demand section: per workload, where its demand came from and over which window.

Demand is half of every starvation date, so the report says whether a workload's figures were
fitted on what its serving engine counted (Prometheus, the query and the window) or typed into
the workloads file, and, when Prometheus could not be reached, that the file stood in.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from reportlab.lib.units import cm
from reportlab.platypus import CondPageBreak, Flowable, Paragraph, Spacer

from hardware_profiles.prefixes import si
from reports.cells import data_table, text
from reports.content import AuditReport
from reports.styles import stylesheet
from tasks.analysis.demand import STATISTIC
from tasks.analysis.ranking.ranking import records

MAX_FILE_ROWS = 20  # workloads whose demand the file states, listed before "and N more"


def _growth(r: Any) -> str:
    sigma = r.demand_growth_sigma
    spread = "" if sigma is None or pd.isna(sigma) else f" ± {100 * float(sigma):.1f}"
    return f"{100 * float(r.demand_growth_per_year):+.1f}{spread} %"


def _window(r: Any) -> str:
    if r.source != "prometheus":
        return "–"
    return f"{r.window_start:%Y-%m-%d} to {r.window_end:%Y-%m-%d}"


def demand_section(report: AuditReport) -> list[Flowable]:
    """Nothing when the report carries no demand provenance (reports built elsewhere)."""
    demand = report.demand
    if demand is None or demand.empty:
        return []
    s = stylesheet()
    fitted = demand[demand["source"] == "prometheus"]
    typed = demand[demand["source"] != "prometheus"]
    flow: list[Flowable] = [
        CondPageBreak(6 * cm),
        Paragraph("Demand: where it came from", s["h1"]),
    ]
    if not fitted.empty:
        flow.append(
            Paragraph(
                text(
                    f"{len(fitted)} workload(s) fitted on Prometheus ({STATISTIC}; ± is the "
                    "fit's standard error, a floor on the real spread)."
                ),
                s["small"],
            )
        )
    flow += [
        Paragraph(text(f"{len(typed)} workload(s) {detail}."), s["small"])
        for detail, _ in typed.groupby("detail", sort=False)
    ]
    shown = pd.concat([fitted, typed.head(MAX_FILE_ROWS)])
    rows = [
        [
            r.name,
            "Prometheus" if r.source == "prometheus" else "file",
            si(float(r.demand_units_per_s), "").strip() + "/s",
            _growth(r),
            _window(r),
            r.query if isinstance(r.query, str) else "–",
        ]
        for r in records(shown)
    ]
    flow += [
        Spacer(1, 4),
        data_table(
            ["workload", "source", "demand", "growth/yr", "window", "query"],
            rows,
            [3.6 * cm, 1.6 * cm, 1.8 * cm, 2.2 * cm, 3.4 * cm, 5.4 * cm],
        ),
    ]
    if len(typed) > MAX_FILE_ROWS:
        flow.append(
            Paragraph(
                f"and {len(typed) - MAX_FILE_ROWS:,} more workload(s) as the file states them.",
                s["small"],
            )
        )
    return flow
