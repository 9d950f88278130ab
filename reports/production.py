"""The PDF's production page: what the fleet's own serving engines reach, per workload.

One row per served model and accelerator model: achieved bandwidth (TB/s, % of spec, % of the
probes' ceiling), the device exporter's measured utilization beside it (their gap is
memwall's byte-model error; a busy-time reading starred as the weaker signal), FLOP
utilization, batch and context as served, KV fill, the measured step against memwall's
prediction; then each row's verdict with its time to first token, and the telemetry set aside
(shared GPUs, missing profiling fields, scrape gaps), each in one line.
"""

from __future__ import annotations

import math
from typing import Any

from reportlab.lib.units import cm
from reportlab.platypus import Flowable, PageBreak, Paragraph, Spacer

from reports.cells import data_table, text
from reports.content import AuditReport
from reports.styles import stylesheet
from tasks.analysis.ranking.ranking import records
from tasks.analysis.supply.production import WEAKER, row_line

MAX_FINDINGS = 12
HEADER = [
    "workload", "accelerator", "GPUs", "batch", "context", "TB/s", "% spec", "% probes",
    "% device", "FLOP/s", "KV fill", "step ms", "predicted",
]  # fmt: skip
WIDTHS_CM = (2.5, 2.2, 1.0, 1.1, 1.3, 1.1, 1.2, 1.3, 1.2, 1.2, 1.2, 1.2, 1.5)


def _pct(value: Any) -> str:
    return (
        "–"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{100 * float(value):.0f} %")
    )


def _num(value: Any, scale: float, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(float(value) * scale, fmt)


def production_section(report: AuditReport) -> list[Flowable]:
    """Nothing when the audit read no serving telemetry."""
    seen = report.production
    if seen is None:
        return []
    s = stylesheet()
    flow: list[Flowable] = [
        PageBreak(),
        Paragraph("Production efficiency: measured where it is served", s["h1"]),
        Paragraph(
            text(
                "From the serving engines' own step times at the batch and context they served, "
                "memwall's bytes for that step and the device's spec; beside it, % device: "
                "the bandwidth the device's exporter measured (DCGM, AMD's "
                "device-metrics-exporter, the TPU device plugin; their gap is memwall's "
                "byte-model error on the workload). Under the table, each row's verdict and "
                "its engine's time to first token (median ± spread over the window). Where a "
                "row calibrates, its efficiency comes first in the efficiency order."
            ),
            s["small"],
        ),
    ]
    if seen.rows.empty:
        flow.append(Paragraph("No serving engine's telemetry was found in the window.", s["small"]))
    else:
        rows = [
            [
                r.workload_id or r.model_name,
                r.accelerator_id,
                str(r.gpus),
                _num(r.batch, 1, ".1f"),
                _num(r.context, 1, ",.0f"),
                _num(r.achieved_bandwidth_bytes_per_s, 1e-12, ".2f"),
                _pct(r.production_bandwidth_efficiency),
                _pct(r.probe_ceiling_fraction),
                _pct(r.bandwidth_utilization) + ("*" if r.bandwidth_signal == WEAKER else ""),
                _pct(r.flops_utilization),
                _pct(r.kv_cache_usage),
                _num(r.measured_step_s, 1e3, ".2f"),
                _num(r.predicted_step_s, 1e3, ".2f"),
            ]
            for r in records(seen.rows)
        ]
        flow += [
            Spacer(1, 4),
            data_table(HEADER, rows, [w * cm for w in WIDTHS_CM]),
            Spacer(1, 4),
        ]
        if any(r.bandwidth_signal == WEAKER for r in records(seen.rows)):
            flow.append(Paragraph(text(f"* measured {WEAKER}."), s["small"]))
        for r in records(seen.rows):
            name = r.workload_id if isinstance(r.workload_id, str) else r.model_name
            who = f"{name} on {r.accelerator_id}"
            said = row_line(r.verdict, r.notes, r.ttft_s, r.ttft_spread)
            if said:
                flow.append(Paragraph(text(f"{who}: {said}"), s["small"]))
    for line in seen.findings[:MAX_FINDINGS]:
        flow.append(Paragraph(text(line), s["small"]))
    if len(seen.findings) > MAX_FINDINGS:
        more = len(seen.findings) - MAX_FINDINGS
        flow.append(Paragraph(f"and {more} more telemetry finding(s).", s["small"]))
    return flow
