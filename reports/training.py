"""The PDF's training page: per training workload with a layout, its layout, memory per device
by term, step time by part, MFU and the first wall, then what each mitigation buys and what it
risks. Everything is computed in :mod:`tasks.analysis.training.audit`; this lays it out."""

from __future__ import annotations

from typing import Any

import pandas as pd
from reportlab.lib.units import cm
from reportlab.platypus import Flowable, PageBreak, Paragraph, Spacer

from hardware_profiles.prefixes import si
from reports.cells import data_table, text
from reports.content import AuditReport
from reports.styles import stylesheet

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


def _months(value: float, horizon: int) -> str:
    if value <= 0:
        return "now"
    return f"beyond {horizon} months" if value >= horizon else f"in {value:.1f} months"


def _workload(r: Any, mitigations: pd.DataFrame, horizon: int) -> list[Flowable]:
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
        f"{r['wall']}, {_months(r['months_to_wall'], horizon)}. GEMM efficiency: "
        f"{r['matmul_efficiency_source']}."
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
                f"{float(m['months_bought']):+.1f}",
                m["accuracy_risk"],
                m["cost"],
            ]
            for m in mitigations.to_dict("records")
        ]
        widths = [2.6 * cm, 1.5 * cm, 1.3 * cm, 0.9 * cm, 1.3 * cm, 6.0 * cm, 4.4 * cm]
        header = ["mitigation", "step", "speedup", "fits", "months", "accuracy risk", "cost"]
        flow.append(data_table(header, rows, widths))
    flow.append(Spacer(1, 6))
    return flow


def training_section(report: AuditReport) -> list[Flowable]:
    """Nothing when no training workload states a layout."""
    found = report.findings.training
    if found is None or (found.summary.empty and not found.skipped):
        return []
    s = stylesheet()
    horizon = len(report.findings.months)
    flow: list[Flowable] = [
        PageBreak(),
        Paragraph("Training: layout, memory, step time and walls", s["h1"]),
        Paragraph(
            text(
                "Each training workload with a layout, as one job on its pool's main "
                "accelerator model: its step at that layout, the wall it meets first and when "
                "(its demand in steps/s against one step per step time, today's fleet), and "
                "what each mitigation buys in months. Accuracy risk and cost are stated, not "
                "modelled."
            ),
            s["small"],
        ),
        Spacer(1, 4),
    ]
    by_id = dict(tuple(found.mitigations.groupby("workload_id", sort=False)))
    empty = found.mitigations.iloc[:0]
    for r in found.summary.to_dict("records"):
        flow += _workload(r, by_id.get(r["workload_id"], empty), horizon)
    for note in found.skipped:
        flow.append(Paragraph(text(f"Not laid out: {note}"), s["small"]))
    return flow
