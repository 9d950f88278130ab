"""The what-if PDF: roadmap scenarios side by side against the baseline."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from reportlab.lib.units import cm
from reportlab.platypus import Flowable, PageBreak, Paragraph, Spacer

from hardware_profiles.provenance import CAVEAT
from reports.build import write_flowables
from reports.cells import WIDTH, data_table, month, text
from reports.charts import Chart
from reports.scenario_figures import scenario_figures_section
from reports.story import ranking_table
from reports.styles import stylesheet
from reports.whatif_charts import ScenarioLine, starving_by_month, whatif_chart
from tasks.analysis.ranking.ranking import records

TOP_N = 10


@dataclass(frozen=True)
class WhatIfReport:
    run_id: str
    generated_at: dt.datetime
    months: list[dt.date]
    baseline: str
    comparison: pd.DataFrame
    rankings: dict[str, pd.DataFrame]
    sources: dict[str, str]
    # Scenario -> the announced or preliminary models it buys inside the horizon, named.
    unconfirmed: dict[str, str] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return "memwall what-if: roadmap scenarios compared"


def _usd(value: Any) -> str:
    return "unknown" if value is None or pd.isna(value) else f"${float(value):,.0f}"


def headline(report: WhatIfReport) -> str:
    rows = report.comparison
    total = len(next(iter(report.rankings.values())))
    best = rows.sort_values(["starving", "months_gained"], ascending=[True, False]).iloc[0]
    base = rows[rows["scenario"] == report.baseline].iloc[0]
    end = f"{report.months[-1]:%Y-%m}"
    if best["scenario"] == report.baseline:
        return (
            f"No scenario beats {report.baseline}: {base['starving']} of {total} workloads "
            f"starve by {end}."
        )
    return (
        f"{best['scenario']} leaves {best['starving']} of {total} workloads starving by {end}, "
        f"against {base['starving']} under {report.baseline}."
    )


def _grouped(by_scenario: dict[str, str]) -> dict[str, list[str]]:
    """Scenarios that buy the same unconfirmed models, said once: models -> scenario names."""
    grouped: dict[str, list[str]] = {}
    for name, models in by_scenario.items():
        grouped.setdefault(models, []).append(name)
    return grouped


def decision_chart(report: WhatIfReport) -> Chart:
    """Months gained against extra cost, and workloads starving per month, per scenario."""
    lines = [
        ScenarioLine(
            name=str(r.scenario),
            extra_cost_usd=None if pd.isna(r.extra_cost_usd) else float(r.extra_cost_usd),
            months_gained=int(r.months_gained),
            starving=starving_by_month(report.months, report.rankings[r.scenario]),
            baseline=r.scenario == report.baseline,
        )
        for r in records(report.comparison)
    ]
    total = len(next(iter(report.rankings.values())))
    return whatif_chart(lines, report.months, total, WIDTH)


def whatif_story(report: WhatIfReport) -> list[Flowable]:
    s = stylesheet()
    rows = [
        [
            r.scenario
            + (" (baseline)" if r.scenario == report.baseline and r.scenario != "baseline" else ""),
            r.starving,
            ", ".join(r.rescued) or "–",
            ", ".join(r.newly_starving) or "–",
            f"{r.months_gained:+d}",
            _usd(r.cost_usd),
            _usd(r.extra_cost_usd),
            _usd(r.cost_per_month_gained_usd) if r.months_gained > 0 else "–",
        ]
        for r in records(report.comparison)
    ]
    flow: list[Flowable] = [
        Paragraph(text(report.title), s["title"]),
        Paragraph(
            text(
                f"Run {report.run_id} · {report.generated_at:%Y-%m-%d %H:%M} UTC · horizon "
                f"{month(report.months[0])} to {month(report.months[-1])}"
            ),
            s["muted"],
        ),
        Paragraph(text(headline(report)), s["headline"]),
        Paragraph("Scenarios", s["h1"]),
        Paragraph(
            "starving: workloads that starve (memory-bound, headroom < 1) within the horizon; "
            "rescued / newly starving: against the baseline; months gained: summed over "
            "workloads, a workload that no longer starves counting the rest of the horizon; "
            "cost: purchases within the horizon at the roadmap's unit cost, else the catalog's "
            "list price (unknown where neither is given).",
            s["small"],
        ),
        Spacer(1, 4),
        data_table(
            [
                "scenario",
                "starving",
                "rescued",
                "newly starving",
                "months gained",
                "cost",
                "extra cost",
                "per month gained",
            ],
            rows,
            [3.0 * cm, 1.4 * cm, 3.4 * cm, 2.6 * cm, 1.6 * cm, 2.0 * cm, 2.0 * cm, 2.0 * cm],
        ),
        Spacer(1, 8),
        Paragraph("The trade", s["h2"]),
        Paragraph(
            "Left: months gained against extra cost, one point per scenario (up and to the left "
            "buys more time per dollar; on the dashed zero line, the money bought no time). "
            "Right: workloads starving by each month under each scenario (the baseline dashed).",
            s["small"],
        ),
        decision_chart(report),
        *scenario_figures_section(report.comparison),
    ]
    if report.unconfirmed:
        flow += [
            Spacer(1, 6),
            Paragraph(text("Scenarios that buy hardware that is not shipping:"), s["body"]),
            *(
                Paragraph(text(f"{', '.join(names)}: {models}."), s["small"])
                for models, names in _grouped(report.unconfirmed).items()
            ),
            Paragraph(text(CAVEAT), s["small"]),
        ]
    for name, ranking in report.rankings.items():
        flow += [
            PageBreak(),
            Paragraph(text(f"Scenario {name}: top {min(TOP_N, len(ranking))} workloads"), s["h1"]),
            ranking_table(ranking.head(TOP_N)),
        ]
    flow += [Paragraph("Sources", s["h2"])] + [
        Paragraph(text(f"{k}: {v}"), s["small"]) for k, v in report.sources.items()
    ]
    return flow


def write_whatif_pdf(report: WhatIfReport, path: str | Path) -> Path:
    return write_flowables(
        whatif_story(report), path, title=report.title, subject=f"memwall what-if {report.run_id}"
    )
