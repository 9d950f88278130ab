"""The page per top workload: its facts, its replica, its bytes by component and the
mitigations tried on it, each with the reason where one does not apply."""

from __future__ import annotations

from typing import Any

import pandas as pd
from reportlab.lib.units import cm
from reportlab.platypus import (
    Flowable,
    PageBreak,
    Paragraph,
    Spacer,
    Table,
)

from hardware_profiles.prefixes import si
from reports.accuracy import row_likely
from reports.cells import data_table, intensity, missing, month, percent, text, times
from reports.charts import fit
from reports.styles import key_style, stylesheet
from reports.walls import is_job, remedy_note, replica_facts
from tasks.analysis.ranking.ranking import records

SERVING_MITIGATIONS = (
    "Each is the projection recomputed with that one change (the workload keeps its share of the "
    "pool). Months gained count to the end of the horizon for a workload that no longer starves; "
    "n/a where the change does not apply."
)
JOB_MITIGATIONS = (
    "A training job: each is its step recomputed with that one change, and the month its wall "
    "moves to; months gained count to the end of the horizon where the wall leaves it. The "
    "training page states what each risks in accuracy and what it costs."
)


def _experts_note(r: Any) -> list[Flowable]:
    """A MoE decode workload's routed-expert share, the engine generation it is fitted for
    and why that one: an early engine's share is far below a current one's, so the figure
    says which it is (none for a workload without routed experts)."""
    share = getattr(r, "expert_share", None)
    if share is None or missing(share):
        return []
    said = (
        f"Routed experts at {share:.2f} of the dense efficiencies ({r.engine_generation}): "
        f"{r.expert_share_source}."
    )
    return [Paragraph(text(said), stylesheet()["small"])]


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
            f"{intensity(r.arithmetic_intensity_flops_per_byte)} FLOP/B",
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
                if not missing(detail.weights_bytes_per_unit)
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
            else ("≥ " if missing(m.starve_month) else "") + f"{int(m.months_gained):+d}",
        ]
        for m in records(mitigations)
    ]
    flow: list[Flowable] = [
        PageBreak(),
        Paragraph(text(f"#{r.rank} {r.name}"), s["h1"]),
        _pairs(facts, [3.8 * cm, 5.2 * cm, 3.8 * cm, 5.2 * cm]),
        *remedy_note(r),
        *_experts_note(r),
        Paragraph("Bytes breakdown", s["h2"]),
        _pairs(breakdown, [3.6 * cm, 14.4 * cm]),
        Paragraph("Mitigations", s["h2"]),
        Paragraph(JOB_MITIGATIONS if is_job(r) else SERVING_MITIGATIONS, s["small"]),
        Spacer(1, 3),
        data_table(
            ["mitigation", "wall from" if is_job(r) else "starves", "months gained"],
            mitigation_rows,
            [6 * cm, 8 * cm, 3 * cm],
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
    return "–" if missing(value) else f"{int(value):,}"
