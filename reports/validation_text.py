"""What ``memwall validate`` found, as plain text: what each prediction is made of, XLA's bytes
beside the model's, and the median errors. Apart from the PDF's section (``reports.validation``)
so the command line and the device check say it without importing reportlab: the probe path
runs on a GPU host's own Python, which has JAX and no PDF library.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tasks.analysis.supply.validation import median_abs_error

Record = Mapping[str, Any]


def milliseconds(value: Any) -> str:
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
        found.append(f"{p['part']} {milliseconds(p['step_s'])} ({ceiling})")
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
