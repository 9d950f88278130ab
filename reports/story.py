"""The audit as a list of reportlab flowables: pure, tables in, story out, no file I/O.

All user-supplied text (workload names, owners, device names, notes) passes through
:func:`text`, which escapes it: reportlab's Paragraph reads markup, and a workload named
``<b>x</b>`` must print as written, not in bold (or crash the build with a malformed tag).
Table cells given as plain strings are drawn literally, which is how the appendix lists
thousands of workloads quickly.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from reportlab.lib.units import cm
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    PageBreak,
    Paragraph,
    Spacer,
    Table,
)

from hardware_profiles.months import add_months
from reports.accuracy import accuracy_section, row_likely
from reports.cells import WIDTH, data_table, intensity, month, percent, text, times
from reports.charts import fit, headroom_chart, roofline_chart
from reports.content import AuditReport
from reports.demand import demand_section
from reports.detail import _detail_page
from reports.devices import _measured_vs_spec
from reports.precision import precision_section, status_note
from reports.production import production_section
from reports.styles import key_style, stylesheet, table_style
from reports.timeline import wall_timeline
from reports.training import training_section
from reports.validation import validation_section
from reports.walls import first_page, method_lines, wall_label
from tasks.analysis.findings import Findings
from tasks.analysis.ranking.ranking import records
from tasks.analysis.workload.variants import PRECISION_CHANGES

APPENDIX_CHUNK = 250  # rows per appendix table: each splits over pages on its own
FULL_TABLE_ROWS = 100  # beyond this, the ranking section shows the top N, the appendix the rest


def _mitigation(r: Any) -> str:
    if pd.isna(r.best_mitigation):
        return "–"
    return f"{r.best_mitigation} (+{r.months_gained} mo)"


def headline(findings: Findings) -> str:
    """One sentence: how many starve before the horizon ends, and the first three."""
    ranking = findings.ranking
    total = len(ranking)
    before = month(add_months(findings.months[-1], 1))
    starving = ranking[ranking["starve_month"].notna()]
    if starving.empty:
        tight = ranking.iloc[0]
        return (
            f"None of {total} workloads starves of memory bandwidth before {before}; the "
            f"tightest is {tight['name']} at {times(tight['min_headroom'])} headroom "
            f"({month(tight['min_headroom_month'])})."
        )
    first = "; ".join(f"{r.name} starves {row_likely(r)}" for r in records(starving.head(3)))
    more = f" and {len(starving) - 3} more" if len(starving) > 3 else ""
    verb = "starves" if len(starving) == 1 else "starve"
    return f"{len(starving)} of {total} workloads {verb} before {before}: {first}{more}."


def _cover(report: AuditReport) -> list[Flowable]:
    s = stylesheet()
    f = report.findings
    ranking = f.ranking
    starving = int(ranking["starve_month"].notna().sum())
    shortfall = int(ranking["shortfall_month"].notna().sum())
    figures = [
        ["Workloads", f"{len(ranking):,}"],
        ["Starve (memory-bound, headroom < 1) in the horizon", f"{starving:,}"],
        ["Compute-bound shortfalls (not starvation)", f"{shortfall:,}"],
        ["Memory-bound today", f"{int((ranking['bound'] == 'memory').sum()):,}"],
        ["Horizon", f"{month(f.months[0])} to {month(f.months[-1])} ({len(f.months)} months)"],
        ["Run", report.run_id],
        ["Generated", f"{report.generated_at:%Y-%m-%d %H:%M} UTC"],
    ]
    key = Table(figures, colWidths=[11 * cm, 6 * cm])
    key.setStyle(key_style())
    return [
        Paragraph(text(report.title), s["title"]),
        Paragraph(
            "Which workloads starve of memory bandwidth first, when, and what would fix it.",
            s["muted"],
        ),
        Spacer(1, 0.4 * cm),
        Paragraph(text(headline(f)), s["cover"]),
        *first_page(ranking, f.actions, add_months(f.months[-1], 1)),
        Spacer(1, 0.4 * cm),
        key,
        PageBreak(),
    ]


def _summary(report: AuditReport) -> list[Flowable]:
    s = stylesheet()
    f = report.findings
    ranking = f.ranking
    flow: list[Flowable] = [Paragraph("Executive summary", s["h1"])]
    starving = ranking[ranking["starve_month"].notna()]
    bullets = []
    for r in records(starving.head(3)):
        fix = (
            f"best fix: {r.best_mitigation}, {r.months_gained} month(s) later"
            if not pd.isna(r.best_mitigation)
            else "no mitigation tried moves it"
        )
        bullets.append(
            f"{r.name} (pool {r.pool}) starves {row_likely(r)}: memory-bound at "
            f"{percent(r.utilization_now)} compute utilisation today; {fix}."
        )
    shortfalls = ranking[ranking["shortfall_month"].notna()]
    if not shortfalls.empty:
        names = ", ".join(
            f"{r.name} ({month(r.shortfall_month)})" for r in records(shortfalls.head(3))
        )
        bullets.append(
            f"{len(shortfalls)} workload(s) fall short while compute-bound (more compute, not "
            f"bandwidth, would help): {names}."
        )
    if starving.empty:
        bullets.append("No workload starves within the horizon on this roadmap.")
    if f.events:
        bullets.append(
            "Roadmap changes in the horizon: " + "; ".join(e.label for e in f.events[:6]) + "."
        )
    flow += [Paragraph("• " + text(b), s["body"]) for b in bullets]
    flow += [
        Spacer(1, 6),
        Paragraph(f"Top {min(report.top_n, len(ranking))} of {len(ranking):,} workloads", s["h2"]),
        ranking_table(ranking.head(report.top_n)),
    ]
    if len(ranking) > FULL_TABLE_ROWS:
        flow.append(
            Paragraph(
                f"The appendix lists workloads {report.top_n + 1:,} to {len(ranking):,}.",
                s["small"],
            )
        )
    return flow


def _charts(report: AuditReport) -> list[Flowable]:
    s = stylesheet()
    f = report.findings
    flow: list[Flowable] = [CondPageBreak(10 * cm)]
    if f.ceilings:
        flow += [
            Paragraph("Roofline of the roadmap's hardware", s["h1"]),
            Paragraph(
                f"Usable {f.roofline_precision} ceilings (log-log). Points: the top "
                f"{min(len(f.points), len(f.ranking))} workloads by rank, at their arithmetic "
                "intensity and the FLOP/s per device they attain on their pool today; the top "
                f"{report.top_n} are labelled with their rank.",
                s["small"],
            ),
            roofline_chart(f.ceilings, f.points, WIDTH),
        ]
    if f.wall_rows:
        flow += [
            CondPageBreak(8 * cm),
            Paragraph("Walls over the horizon", s["h1"]),
            Paragraph(
                "Each top workload month by month: fine, tight, past a wall (bw bandwidth, cap "
                "capacity, lat latency, net network, cmp compute), no hardware in its pool yet, "
                "or not started. Rows in ranking order; a training job's row is its step's "
                "headroom against its demand in steps/s.",
                s["small"],
            ),
            wall_timeline(f.months, f.wall_rows, WIDTH),
        ]
    flow += [
        CondPageBreak(11 * cm),
        Paragraph("Headroom over the horizon", s["h1"]),
        Paragraph(
            "Supply over demand, month by month, for the top workloads; below the dashed line "
            "demand is not met. Shaded: P10 to P90 of the headroom. Dotted lines: roadmap "
            "changes.",
            s["small"],
        ),
        headroom_chart(f.months, f.timelines, f.events[:12], WIDTH),
    ]
    return flow


def ranking_table(ranking: pd.DataFrame) -> Table:
    rows = [
        [
            r.rank,
            r.name,
            r.pool,
            r.phase,
            r.precision,
            intensity(r.arithmetic_intensity_flops_per_byte),
            r.bound,
            percent(r.utilization_now),
            times(r.min_headroom),
            row_likely(r),
            wall_label(r, band=False) if "wall" in ranking else "–",
            _mitigation(r),
        ]
        for r in records(ranking)
    ]
    return data_table(
        [
            "#",
            "workload",
            "pool",
            "phase",
            "prec.",
            "AI",
            "bound",
            "util.",
            "min head.",
            "starves",
            "wall",
            "best fix",
        ],
        rows,
        [
            0.7 * cm,
            2.6 * cm,
            1.3 * cm,
            1.3 * cm,
            1.0 * cm,
            1.1 * cm,
            1.4 * cm,
            1.3 * cm,
            1.2 * cm,
            2.5 * cm,
            1.5 * cm,
            2.2 * cm,
        ],
    )


def appendix_tables(ranking: pd.DataFrame) -> list[Flowable]:
    """Plain-string tables (drawn literally, fast for thousands of rows), cut into chunks so
    each page split only measures its own chunk."""
    widths = [1.1 * cm, 6.0 * cm, 2.2 * cm, 1.5 * cm, 1.5 * cm, 1.6 * cm, 1.5 * cm, 2.6 * cm]
    header = ["#", "workload", "pool", "bound", "util.", "min head.", "starves", "best fix"]
    rows = [
        [
            str(r.rank),
            fit(str(r.name), widths[1] - 6, 7),
            fit(str(r.pool), widths[2] - 6, 7),
            str(r.bound),
            percent(r.utilization_now),
            times(r.min_headroom),
            month(r.starve_month),
            fit(_mitigation(r), widths[7] - 6, 7),
        ]
        for r in records(ranking)
    ]
    tables: list[Flowable] = []
    for start in range(0, len(rows), APPENDIX_CHUNK):
        table = Table(
            [header, *rows[start : start + APPENDIX_CHUNK]], colWidths=widths, repeatRows=1
        )
        table.setStyle(table_style())
        tables.append(table)
    return tables


def _method(report: AuditReport) -> list[Flowable]:
    s = stylesheet()
    defaults = report.calibration_defaults
    lines = [
        "Ceilings: BW = spec bandwidth × bandwidth efficiency; F = dense spec FLOP/s at the "
        "workload's compute precision × compute efficiency (fp8, fp6, fp4 and int4 only where "
        "the device has those units). Efficiencies "
        "are measured by this run's probes where memwall measured that model, else the defaults: "
        f"bandwidth {defaults.get('bandwidth', 0):.2f}, compute {defaults.get('flops', 0):.2f}.",
        "Roofline: AI = FLOPs per unit / bytes per unit; a device attains min(F, AI·BW); a pool "
        "attains Σ over its models of count × min(F, AI·BW); the workload is memory-bound when "
        "Σ count·AI·BW < Σ count·F; utilisation = attained / Σ count·F.",
        "Projection, month t of the horizon (t = 0 the start month): demand "
        "D(t) = D(0)·(1+g)^(t/12); supply S(t) = share × pool attained FLOP/s at t / FLOPs "
        "per unit; headroom S/D. A "
        "roadmap change counts from the month containing its effective date. A pool's share not "
        "given is split in proportion to what each workload needs of the whole pool today.",
        "Starvation: the first month with headroom < 1 while memory-bound. Headroom < 1 while "
        "compute-bound is a shortfall, reported but not starvation. Rank: starvation month, then "
        "lowest headroom; workloads that never starve come last, by their lowest headroom.",
        f"Mitigations: lower precision ({'; '.join(c.label for c in PRECISION_CHANGES)}). "
        "Weight-only int8/int4 (groups of 128 with 16-bit scales) shrink the weights and keep "
        "the compute precision, so run anywhere; an fp8 KV cache shrinks the cache; fp8 and "
        "fp4 compute (fp4 = NVFP4, 4.5 bits with its scales) store weights and KV at that "
        "precision (KV fp8 under fp4) and run against its peak, only where every device of "
        "the pool has those units (n/a, with the reason, elsewhere); a larger decode batch "
        "(x2, x4) shares each weight read among more tokens. Workloads made from a model "
        "preset are re-derived by the workload model, exactly. For other rows, lower compute "
        "precision scales bytes per unit by the ratio of element sizes, as if weights, KV "
        "cache and activations all shrank alike (an approximation: activations often stay "
        "wider); "
        "weight-only and KV changes scale their share of a decode row; a larger batch divides "
        "the weights' bytes per token by the factor and keeps the KV cache per token, with "
        "weights per token estimated as b_w·FLOPs/(2·B) (two FLOPs per weight), which overstates "
        "them at long contexts; a row where that leaves no KV bytes is skipped (n/a). Moving to "
        "another pool's hardware keeps the workload's share and its own pool's device count, but "
        "on the other pool's mix of models each month.",
        *method_lines(report.findings.devices),
        *(f"{name}: {where}" for name, where in report.sources.items()),
        *(f"{k}: {v}" for k, v in report.settings.items()),
        f"Software: {report.software}" if report.software else "",
        f"Run id: {report.run_id}",
        stage_times(report.timings),
    ]
    return [
        PageBreak(),
        Paragraph("Assumptions and method", s["h1"]),
        *(Paragraph(text(line), s["body"]) for line in lines if line),
        *accuracy_section(
            report.findings.efficiencies, report.findings.backtest, report.findings.ranking
        ),
    ]


def stage_times(timings: dict[str, float]) -> str:
    """Where the audit's time went until this report was made, stage by stage."""
    if not timings:
        return ""
    stages = "; ".join(f"{stage} {seconds:,.1f} s" for stage, seconds in timings.items())
    return f"Time per stage ({sum(timings.values()):,.1f} s until this report): {stages}."


def story(report: AuditReport) -> list[Flowable]:
    f = report.findings
    s = stylesheet()
    flow = _cover(report) + _summary(report) + status_note(report) + _measured_vs_spec(report)
    flow += _charts(report) + precision_section(report)
    ranking = f.ranking
    flow += [
        PageBreak(),
        Paragraph("Ranking", s["h1"]),
        Paragraph(
            "Earliest starvation first, then lowest headroom over the horizon. util. = compute "
            "utilisation today; min head. = lowest headroom in the horizon; best fix = the "
            "mitigation that moves starvation furthest (months gained).",
            s["small"],
        ),
        Spacer(1, 4),
        ranking_table(ranking if len(ranking) <= FULL_TABLE_ROWS else ranking.head(report.top_n)),
    ]
    by_id = dict(tuple(f.mitigations.groupby("workload_id", sort=False)))
    details = f.details.set_index("workload_id")
    for r in records(ranking.head(len(details))):
        mitigations = by_id.get(r.workload_id, f.mitigations.iloc[:0])
        flow += _detail_page(r, details.loc[r.workload_id], mitigations)
    flow += training_section(report) + demand_section(report) + production_section(report)
    flow += _method(report)
    flow += validation_section(report.validation, report.validation_from)
    if len(ranking) > FULL_TABLE_ROWS:
        flow += [
            PageBreak(),
            Paragraph(f"Appendix: workloads {report.top_n + 1:,} to {len(ranking):,}", s["h1"]),
            *appendix_tables(ranking.iloc[report.top_n :]),
        ]
    return flow
