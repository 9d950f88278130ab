"""The audit as a list of reportlab flowables: pure, tables in, story out, no file I/O.

All user-supplied text (workload names, owners, device names, notes) passes through
:func:`text`, which escapes it: reportlab's Paragraph reads markup, and a workload named
``<b>x</b>`` must print as written, not in bold (or crash the build with a malformed tag).
Table cells given as plain strings are drawn literally, which is how the appendix lists
thousands of workloads quickly.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
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

from reports.accuracy import accuracy_section, row_likely
from reports.charts import fit, headroom_chart, roofline_chart
from reports.content import AuditReport, Findings
from reports.precision import precision_section, status_note
from reports.styles import STATUS_COLOURS, key_style, stylesheet, table_style
from reports.timeline import wall_timeline
from reports.validation import validation_section
from reports.walls import first_page, method_lines, remedy_note, replica_facts, wall_label
from tasks.analysis.precision_changes import PRECISION_CHANGES
from tasks.analysis.ranking import records

_PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
WIDTH = 18 * cm  # A4 less the margins
APPENDIX_CHUNK = 250  # rows per appendix table: each splits over pages on its own
FULL_TABLE_ROWS = 100  # beyond this, the ranking section shows the top N, the appendix the rest


def text(value: object) -> str:
    """User text made safe for a Paragraph: markup characters print literally."""
    return escape(str(value), {'"': "&quot;", "'": "&#39;"})


def _missing(value: Any) -> bool:
    return value is None or bool(pd.isna(value))


def si(value: float | None, unit: str, digits: int = 3) -> str:
    """``1.96e10, 'B/s'`` -> ``'19.6 GB/s'`` (decimal prefixes, as spec sheets use)."""
    if value is None or _missing(value):
        return "–"
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}"


def percent(value: float | None) -> str:
    if value is None or _missing(value):
        return "–"
    return f"{100 * value:.1f} %"


def times(value: float | None) -> str:
    """A headroom as ``1.23x``; ``–`` where there is none (no hardware, or no demand yet)."""
    if value is None or _missing(value) or not np.isfinite(value):
        return "–"
    return f"{value:.2f}x"


def month(value: dt.date | None) -> str:
    return "never" if value is None or _missing(value) else f"{value:%Y-%m}"


def _after(months: list[dt.date]) -> dt.date:
    last = months[-1]
    return dt.date(last.year + last.month // 12, last.month % 12 + 1, 1)


def _cell(value: object, style: str = "cell") -> Paragraph:
    return Paragraph(text(value), stylesheet()[style])


def _table(header: list[str], rows: list[list[Any]], widths: list[float]) -> Table:
    data: list[list[Any]] = [[_cell(h) for h in header]]
    data += [[c if isinstance(c, Flowable) else _cell(c) for c in row] for row in rows]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(table_style())
    return table


def _ai(value: float) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}"


def _mitigation(r: Any) -> str:
    if pd.isna(r.best_mitigation):
        return "–"
    return f"{r.best_mitigation} (+{r.months_gained} mo)"


def headline(findings: Findings) -> str:
    """One sentence: how many starve before the horizon ends, and the first three."""
    ranking = findings.ranking
    total = len(ranking)
    before = month(_after(findings.months))
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
        *first_page(ranking, f.actions, _after(f.months)),
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


def _status_cell(status: str) -> Paragraph:
    colour = STATUS_COLOURS.get(status)
    hex_colour = colour.hexval()[2:] if colour is not None else "616e7c"
    return Paragraph(f'<font color="#{hex_colour}">{text(status)}</font>', stylesheet()["cell"])


def devices_table(devices: pd.DataFrame, precision: str) -> Table:
    rows = [
        [
            d.name,
            si(d.spec_bandwidth_bytes_per_s, "B/s"),
            si(d.bandwidth_bytes_per_s, "B/s"),
            f"{percent(d.bandwidth_efficiency)} ({d.bandwidth_from})",
            si(d.spec_flops_per_s, "FLOP/s"),
            si(d.flops_per_s, "FLOP/s"),
            f"{percent(d.flops_efficiency)} ({d.flops_from})",
            f"{d.spec_ridge_flops_per_byte:.0f} / {d.ridge_flops_per_byte:.0f}"
            if not _missing(d.ridge_flops_per_byte)
            else "–",
            _status_cell(str(d.status)),
        ]
        for d in records(devices)
    ]
    return _table(
        [
            "model",
            "spec BW",
            "usable BW",
            "BW efficiency",
            f"spec {precision}",
            f"usable {precision}",
            "compute eff.",
            "ridge spec / usable",
            "probes",
        ],
        rows,
        [3.0 * cm, 1.7 * cm, 1.7 * cm, 2.2 * cm, 1.9 * cm, 1.9 * cm, 2.2 * cm, 1.8 * cm, 1.6 * cm],
    )


def measurements_table(measurements: pd.DataFrame) -> Table:
    rows = []
    for m in records(measurements):
        unit = "B/s" if m.unit == "bytes_per_s" else "FLOP/s"
        rows.append(
            [
                f"{m.device_kind} #{m.device_index}",
                m.probe,
                m.dtype,
                si(m.working_set_bytes, "B"),
                si(m.best, unit),
                si(m.median, unit),
                percent(m.cv),
                si(m.spec, unit),
                percent(m.efficiency),
                _status_cell(str(m.status)),
            ]
        )
    return _table(
        [
            "device",
            "probe",
            "dtype",
            "working set",
            "best",
            "median",
            "CV",
            "spec",
            "eff.",
            "status",
        ],
        rows,
        [
            3.2 * cm,
            1.4 * cm,
            1.5 * cm,
            1.6 * cm,
            1.8 * cm,
            1.8 * cm,
            1.2 * cm,
            1.8 * cm,
            1.5 * cm,
            1.4 * cm,
        ],
    )


def _measured_vs_spec(report: AuditReport) -> list[Flowable]:
    s = stylesheet()
    f = report.findings
    flow: list[Flowable] = [
        PageBreak(),
        Paragraph("Measured vs spec", s["h1"]),
        Paragraph(
            "Usable = spec × efficiency: measured on this run where memwall measured that model "
            "(triad bandwidth, matmul at the precision shown), else the default. Ridge = usable "
            f"{f.roofline_precision} FLOP/s over usable bandwidth (FLOP/byte): a workload below "
            "it is memory-bound on that model.",
            s["small"],
        ),
        Spacer(1, 4),
        devices_table(f.devices, f.roofline_precision),
    ]
    if report.accelerators:
        flow += [
            Paragraph("Accelerators on this host", s["h2"]),
            _table(
                ["#", "platform", "device kind", "memory", "catalog entry", "note"],
                [
                    [
                        a.device_index,
                        a.platform,
                        a.device_kind,
                        si(a.memory_bytes, "B"),
                        a.accelerator_id or "–",
                        a.note,
                    ]
                    for a in report.accelerators
                ],
                [0.7 * cm, 1.6 * cm, 4.2 * cm, 1.8 * cm, 3.4 * cm, 6.3 * cm],
            ),
        ]
    if report.measurements is not None and not report.measurements.empty:
        flow += [
            Paragraph("Probe results", s["h2"]),
            Paragraph(
                "Best and median of the timed repetitions; CV is the coefficient of variation "
                "of the times; efficiency is best over the catalog's dense spec. A result is "
                "<i>unstable</i> when CV &gt; 5 % or best/median &gt; 1.1, <i>failed</i> when its "
                "output does not match the value derived by hand.",
                s["small"],
            ),
            Spacer(1, 4),
            measurements_table(report.measurements),
        ]
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
                "capacity, lat latency, cmp compute), no hardware in its pool yet, or not "
                "started. Rows in ranking order.",
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
            _ai(r.arithmetic_intensity_flops_per_byte),
            r.bound,
            percent(r.utilization_now),
            times(r.min_headroom),
            row_likely(r),
            wall_label(r) if "wall" in ranking else "–",
            _mitigation(r),
        ]
        for r in records(ranking)
    ]
    return _table(
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


def _detail_page(r: Any, detail: Any, mitigations: pd.DataFrame) -> list[Flowable]:
    s = stylesheet()
    facts = [
        ["Owner", r.owner, "Pool", r.pool],
        ["Phase", r.phase, "Precision", r.precision],
        ["Bound today", r.bound, "Utilisation today", percent(r.utilization_now)],
        [
            "Headroom today",
            times(r.headroom_now),
            "Lowest headroom",
            f"{times(r.min_headroom)} ({month(r.min_headroom_month)})",
        ],
        ["Starves", row_likely(r), "Shortfall (compute)", month(r.shortfall_month)],
        *replica_facts(r),
        [
            "Arithmetic intensity",
            f"{_ai(r.arithmetic_intensity_flops_per_byte)} FLOP/B",
            "Ridge today",
            f"{r.ridge_flops_per_byte:.0f} FLOP/B",
        ],
    ]
    unit = str(detail.unit)
    components = detail.byte_components
    if components:
        # One row per component: the workload model re-derived this row from its preset.
        split = [
            [f"  {name.replace('_', ' ')}", f"{si(value, 'B')} per {unit}"]
            for name, value in components.items()
        ]
        split[0][1] += " (workload model)"
    else:
        split = [
            [
                "of which",
                f"weights {si(detail.weights_bytes_per_unit, 'B')} + KV cache "
                f"{si(detail.kv_bytes_per_unit, 'B')} per {unit} (estimated: see the method)"
                if not _missing(detail.weights_bytes_per_unit)
                else "weights and KV cache cannot be told apart from this row alone "
                "(no batch mitigation)",
            ]
        ]
    breakdown = [
        ["FLOPs per " + unit, si(detail.flops_per_unit, "FLOP")],
        ["Bytes per " + unit, si(detail.bytes_per_unit, "B")],
        *split,
        ["Memory footprint", si(detail.memory_footprint_bytes, "B")],
        ["Batch / context", f"{_int(detail.batch)} / {_int(detail.context_tokens)} tokens"],
        [
            "Demand today",
            f"{detail.demand_units_per_s:,.4g} {unit}/s, growing "
            f"{percent(detail.demand_growth_per_year)}/year",
        ],
    ]
    mitigation_rows = [
        [
            m.label,
            (f"n/a: {m.reason}" if m.reason else "n/a")
            if not m.applicable
            else month(m.starve_month),
            "–"
            if not m.applicable
            else ("≥ " if _missing(m.starve_month) else "") + f"{int(m.months_gained):+d}",
        ]
        for m in records(mitigations)
    ]
    flow: list[Flowable] = [
        PageBreak(),
        Paragraph(text(f"#{r.rank} {r.name}"), s["h1"]),
        _pairs(facts, [3.8 * cm, 5.2 * cm, 3.8 * cm, 5.2 * cm]),
        *remedy_note(r),
        Paragraph("Bytes breakdown", s["h2"]),
        _pairs(breakdown, [3.6 * cm, 14.4 * cm]),
        Paragraph("Mitigations", s["h2"]),
        Paragraph(
            "Each is the projection recomputed with that one change (the workload keeps its "
            "share of the pool). Months gained count to the end of the horizon for a workload "
            "that no longer starves; n/a where the change does not apply.",
            s["small"],
        ),
        Spacer(1, 3),
        _table(
            ["mitigation", "starves", "months gained"], mitigation_rows, [6 * cm, 8 * cm, 3 * cm]
        ),
    ]
    return flow


def _pairs(rows: list[list[Any]], widths: list[float]) -> Table:
    """Label/value pairs, labels in bold, no header row; plain strings (drawn literally), cut
    to fit their column."""
    table = Table(
        [[fit(str(c), w - 8, 9) for c, w in zip(row, widths, strict=True)] for row in rows],
        colWidths=widths,
    )
    table.setStyle(key_style(label_columns=tuple(range(0, len(widths), 2))))
    return table


def _int(value: Any) -> str:
    return "–" if _missing(value) else f"{int(value):,}"


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
    ]
    return [
        PageBreak(),
        Paragraph("Assumptions and method", s["h1"]),
        *(Paragraph(text(line), s["body"]) for line in lines if line),
        *accuracy_section(report.findings.efficiencies, report.findings.backtest),
    ]


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
    from reports.demand import demand_section  # here: it builds on this module's helpers

    flow += demand_section(report) + _method(report) + validation_section(report.validation)
    if len(ranking) > FULL_TABLE_ROWS:
        flow += [
            PageBreak(),
            Paragraph(f"Appendix: workloads {report.top_n + 1:,} to {len(ranking):,}", s["h1"]),
            *appendix_tables(ranking.iloc[report.top_n :]),
        ]
    return flow
