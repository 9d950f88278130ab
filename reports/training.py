"""The PDF's training page: per training workload with a layout, its layout, memory per device
by term, step time by part, MFU and the first wall with its month and band (as the ranking has
them), then what each mitigation buys in months and what it risks and costs. Everything is
computed in :mod:`tasks.analysis.training.audit` and :mod:`tasks.analysis.walls.training`;
this lays it out."""

from __future__ import annotations

from typing import Any

import pandas as pd
from reportlab.lib.units import cm
from reportlab.platypus import Flowable, PageBreak, Paragraph, Spacer

from hardware_profiles.prefixes import si
from reports.cells import data_table, text
from reports.content import AuditReport
from reports.styles import stylesheet
from reports.walls import wall_label
from tasks.analysis.projection.horizon import NEVER

_TERMS = (
    ("weights", "memory_weights_bytes"),
    ("gradients", "memory_gradients_bytes"),
    ("optimizer", "memory_optimizer_state_bytes"),
    ("activations", "memory_activations_bytes"),
)
_PARTS = (
    ("matmul", "time_matmul_s"),
    ("recompute", "time_recompute_s"),
    ("HBM", "time_hbm_s"),
    ("TP", "time_tensor_parallel_s"),
    ("CP", "time_context_parallel_s"),
    ("EP", "time_expert_parallel_s"),
    ("PP p2p", "time_pipeline_p2p_s"),
    ("bubble", "time_pipeline_bubble_s"),
    ("DP", "time_data_parallel_s"),
    ("optimizer", "time_optimizer_s"),
)


def _seconds(value: float) -> str:
    return f"{value:.3g} s" if value >= 1 else f"{value * 1e3:.3g} ms"


def _gained(m: Any) -> str:
    """Months a mitigation buys; ``≥`` where the wall leaves the horizon (a lower bound)."""
    return ("≥ " if int(m["wall_index"]) == NEVER else "") + f"{int(m['months_gained']):+d}"


def _first_wall(r: Any, ranked: Any, after: str) -> str:
    """The job's wall as the ranking has it, with its month and band; where demand stays
    below one step per step time through the horizon, what binds its step."""
    if ranked is not None and not pd.isna(ranked.wall):
        return wall_label(ranked)
    return f"none before {after} (its step is {r['bound']}-bound)"


def _workload(r: Any, mitigations: pd.DataFrame, ranked: Any, after: str) -> list[Flowable]:
    s = stylesheet()
    memory = ", ".join(f"{name} {si(r[key], 'B')}" for name, key in _TERMS)
    parts = ", ".join(
        f"{name} {_seconds(r[key])}" for name, key in _PARTS if key in r and r[key] > 0
    )
    summary = (
        f"{r['model_preset']} on {r['devices']} x {r['accelerator_id']}, layout {r['layout']}, "
        f"ZeRO-{r['zero']}, {r['recompute']} recompute, {r['precision']}, "
        f"{r['global_batch_tokens']:,} tokens per step. Step {_seconds(r['step_time_s'])}, "
        f"MFU {100 * r['mfu']:.1f} %, {si(r['tokens_per_s'])}tokens/s. Memory per device "
        f"{si(r['memory_total_bytes'], 'B')}: {memory}. Time by part: {parts}. First wall: "
        f"{_first_wall(r, ranked, after)}. GEMM efficiency: {r['matmul_efficiency_source']} "
        f"(±{100 * r['step_spread']:.0f} %)."
    )
    flow: list[Flowable] = [
        Paragraph(text(f"{r['workload_id']}: {r['name'] or r['workload_id']}"), s["h2"]),
        Paragraph(text(summary), s["small"]),
        Spacer(1, 3),
    ]
    if not mitigations.empty:
        rows = [
            [
                m["mitigation"],
                _seconds(float(m["step_time_s"])),
                f"{float(m['speedup']):.2f}x",
                "yes" if m["fits"] else "no",
                _gained(m),
                m["accuracy_risk"],
                m["cost"],
            ]
            for m in mitigations.to_dict("records")
        ]
        widths = [2.6 * cm, 1.5 * cm, 1.3 * cm, 0.9 * cm, 1.3 * cm, 6.0 * cm, 4.4 * cm]
        header = ["mitigation", "step", "faster", "fits", "months", "accuracy risk", "cost"]
        flow.append(data_table(header, rows, widths))
    flow.append(Spacer(1, 6))
    return flow


def training_section(report: AuditReport) -> list[Flowable]:
    """Nothing when no training workload states a layout."""
    found = report.findings.training
    if found is None or (found.summary.empty and not found.skipped):
        return []
    s = stylesheet()
    months = report.findings.months
    after = f"{months[-1]:%Y-%m}"
    ranking = report.findings.ranking
    ranked = {r.workload_id: r for r in ranking.itertuples(index=False)}
    flow: list[Flowable] = [
        PageBreak(),
        Paragraph("Training: layout, memory, step time and walls", s["h1"]),
        Paragraph(
            text(
                "Each training workload with a layout, as one job on its pool's main "
                "accelerator model: its step at that layout, the wall it meets first and when "
                "(its demand in steps/s, month by month, against one step per step time on "
                "its pool's main model of its first served month), and what each mitigation "
                "buys in months (≥: the wall leaves the horizon). The ranking and the walls "
                "over the horizon show the same job. Accuracy risk and cost are stated, not "
                "modelled."
            ),
            s["small"],
        ),
        Spacer(1, 4),
    ]
    mitigations = found.mitigations
    # No job laid out: no mitigation rows (nor columns), only the notes of why.
    by_id = {} if mitigations.empty else dict(tuple(mitigations.groupby("workload_id", sort=False)))
    empty = mitigations.iloc[:0]
    for r in found.summary.to_dict("records"):
        flow += _workload(
            r, by_id.get(r["workload_id"], empty), ranked.get(r["workload_id"]), after
        )
    for note in found.skipped:
        flow.append(Paragraph(text(f"Not laid out: {note}"), s["small"]))
    return flow
