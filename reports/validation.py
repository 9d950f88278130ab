"""The method page's ground truth: how close the workload model came to this host's measured
steps (``memwall validate``'s quick set, run by the audit)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib.units import cm
from reportlab.platypus import Flowable, Paragraph, Spacer, Table

from reports.styles import stylesheet, table_style
from tasks.analysis.supply.validation import median_abs_error
from tasks.history import PastValidation

Record = Mapping[str, Any]
_WIDTHS = [6.0 * cm, 1.6 * cm, 2.4 * cm, 2.4 * cm, 1.6 * cm, 2.2 * cm, 1.8 * cm]


def _ms(value: Any) -> str:
    return "–" if value is None else f"{value * 1e3:,.1f} ms"


def _ratio(a: Any, b: Any) -> str:
    return "–" if a is None or b is None or not b else f"{a / b:.2f}"


def xla_bytes_share(r: Record) -> str:
    """XLA's bytes over the model's, and in brackets less XLA's charge for the embedding
    gather where that is large (XLA charges a gather of several rows its whole table)."""
    raw = _ratio(r["xla_bytes"], r["model_bytes"])
    gather = r.get("xla_gather_bytes")
    if raw == "–" or gather is None or gather < 0.01 * r["model_bytes"]:
        return raw
    return f"{raw} ({_ratio(r['xla_bytes'] - gather, r['model_bytes'])})"


def parts_text(r: Record) -> str:
    """What a case's prediction is made of: each part's time and the ceiling that bound it
    (the triad's bandwidth, or the GEMM rate at the part's shape, both measured here)."""
    found = []
    for p in r.get("predicted_parts") or []:
        if p["bound"] == "memory" and r.get("bandwidth_bytes_per_s"):
            ceiling = f"memory at {r['bandwidth_bytes_per_s'] / 1e9:,.1f} GB/s triad"
        elif p["gemm_rows"] is not None:
            ceiling = (
                f"GEMM {p['gemm_rows']}x{p['gemm_in_features']}x{p['gemm_out_features']} at "
                f"{p['gemm_flops_per_s'] / 1e9:,.1f} GFLOP/s"
            )
        else:
            ceiling = f"square GEMM at {p['gemm_flops_per_s'] / 1e9:,.1f} GFLOP/s"
        found.append(f"{p['part']} {_ms(p['step_s'])} ({ceiling})")
    return " + ".join(found)


def decode_error(records: Sequence[Record]) -> float:
    """Median |measured/predicted - 1| over the decode cases (NaN where none ran)."""
    return median_abs_error(
        r["ratio"] for r in records if r["phase"] == "decode" and r["ratio"] is not None
    )


def roofline_error(records: Sequence[Record]) -> float:
    """The same median for the single roofline on the triad and the square GEMM (the way the
    projection's ceilings are built), where the records carry it."""
    return median_abs_error(
        r["measured_step_s"] / r["roofline_step_s"]
        for r in records
        if r["phase"] == "decode" and r["ratio"] is not None and r.get("roofline_step_s")
    )


def sentence(records: Sequence[Record]) -> str:
    """The one line the PDF states about the model's error on this host: the parts-sum
    prediction's, and the single roofline's beside it, so neither is read for the other."""
    error = decode_error(records)
    decode = sum(1 for r in records if r["phase"] == "decode" and r["ratio"] is not None)
    if math.isnan(error):
        return "memwall could not check its model on this host: no decode case ran."
    line = (
        f"On this host memwall's model predicted decode steps within {error:.0%} (median "
        f"|measured/predicted − 1| over {decode} decode case(s), measured here), each part of "
        "a step on the ceiling measured here at its own shape."
    )
    roofline = roofline_error(records)
    if not math.isnan(roofline):
        line += (
            " A single roofline on the triad and the square GEMM, as the projection's "
            f"STREAM-based ceilings are built, missed them by {roofline:.0%}."
        )
    return line


def reused_sentence(reused: PastValidation) -> str:
    """Where the cases of a quick audit come from: an earlier run, and when."""
    return (
        f"These cases were not run by this audit: they are the last validation of this host "
        f"with the same software, run {reused.run_id} of "
        f"{reused.recorded_at:%Y-%m-%d %H:%M} UTC, reused from the history (a quick audit "
        "measures the probes and reuses the model's check; a full audit runs it again)."
    )


def validation_section(
    records: Sequence[Record], reused: PastValidation | None = None
) -> list[Flowable]:
    """A paragraph and a table of the cases (saying where they come from when ``reused``);
    nothing where the audit ran none."""
    if not records:
        return []
    s = stylesheet()
    method = (
        "Each case is a real decode step or prefill of a model preset, built in JAX at the "
        "model's shapes (attention with its KV heads, gated FFN, the experts a batch touches, "
        "the LM head) and timed on this host. Predicted = the workload model's bytes and FLOPs "
        "of the same layers, split into the parts a step runs one after another (the layers' "
        "matmuls, the touched experts, the LM head, attention over the KV cache); each part "
        "takes the longer of its bytes at the triad's bandwidth and its FLOPs at the GEMM rate "
        "measured at its own shape (the rows it multiplies by its widest weight matrix), both "
        "timed here in turns with the case; the step is the sum of the parts. A few-row matmul "
        "reaches neither the triad's bandwidth nor a square GEMM's rate, which is why a single "
        "roofline on those two misses batched decode. Where the device holds fewer layers than "
        "the model has, the "
        "probe runs those and the comparison is like for like. XLA/model = XLA's own count of "
        "the bytes the compiled step moves over the model's; in brackets less XLA's charge for "
        "the embedding gather (XLA charges a gather of several rows its whole table)."
    )
    header = ["case", "layers", "predicted", "measured", "ratio", "XLA/model B", "status"]
    rows = [
        [
            str(r["case"]),
            f"{r['layers_run']}/{r['layers_total']}",
            _ms(r["predicted_step_s"]),
            _ms(r["measured_step_s"]),
            "–" if r["ratio"] is None else f"{r['ratio']:.2f}",
            xla_bytes_share(r),
            str(r["status"]),
        ]
        for r in records
    ]
    table = Table(
        [[Paragraph(escape(c), s["cell"]) for c in row] for row in [header, *rows]],
        colWidths=_WIDTHS,
        repeatRows=1,
    )
    table.setStyle(table_style())
    made_of = [
        Paragraph(escape(f"{r['case']}: predicted = {parts_text(r)}"), s["small"])
        for r in records
        if r.get("predicted_parts")
    ]
    return [
        Spacer(1, 6),
        Paragraph("Ground truth on this host", s["h2"]),
        Paragraph(escape(sentence(records)), s["body"]),
        *([Paragraph(escape(reused_sentence(reused)), s["body"])] if reused else []),
        Paragraph(escape(method), s["small"]),
        Spacer(1, 4),
        table,
        *made_of,
    ]
