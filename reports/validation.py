"""The method page's ground truth: how close the workload model came to this host's measured
steps (``memwall validate``'s quick set, run by the audit)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from xml.sax.saxutils import escape

from reportlab.lib.units import cm
from reportlab.platypus import Flowable, Paragraph, Spacer, Table

from reports.styles import stylesheet, table_style
from reports.validation_text import (
    Record,
    decode_error,
    milliseconds,
    parts_text,
    roofline_error,
    xla_bytes_share,
)
from tasks.history import PastValidation

__all__ = ["decode_error", "parts_text", "roofline_error", "sentence", "validation_section"]
_WIDTHS = [6.0 * cm, 1.6 * cm, 2.4 * cm, 2.4 * cm, 1.6 * cm, 2.2 * cm, 1.8 * cm]


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
            milliseconds(r["predicted_step_s"]),
            milliseconds(r["measured_step_s"]),
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
