"""The device check's summary: every figure beside the catalog's spec and the native reference,
as ratios, with its CV and the source of each number; the targets the first GPU run is judged
by; written as one JSON and one Markdown file.

A figure without a source is a number nobody can check, so every figure, spec and reference
carries one, and a comparison that could not be made says why instead of leaving a blank.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hardware_profiles.parquet import atomic_path
from hardware_profiles.strict_json import strict

BANDWIDTH_PROBES = ("copy", "scale", "add", "triad", "read")
# What the first light on a GPU is judged by (issue: an H100 or H200).
TRIAD_OVER_NATIVE_COPY = 0.90
BF16_GEMM_OVER_NATIVE = 0.90
VALIDATE_MEDIAN_ERROR = 0.15


@dataclass(frozen=True)
class Reference:
    """A number a figure is compared with: the catalog's spec or a native measurement."""

    value: float
    source: str
    cv: float | None = None


@dataclass(frozen=True)
class Figure:
    """One measured figure (a probe's best) with what it is compared with."""

    name: str
    probe: str
    dtype: str
    unit: str
    value: float | None
    median: float | None
    cv: float | None
    status: str
    source: str
    spec: Reference | None
    native: Reference | None
    # Why a comparison is missing (no catalog row, no native library...).
    missing: dict[str, str] = field(default_factory=dict)

    def over(self, reference: Reference | None) -> float | None:
        if self.value is None or reference is None or not reference.value:
            return None
        return self.value / reference.value

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["over_spec"] = self.over(self.spec)
        out["over_native"] = self.over(self.native)
        return out


@dataclass(frozen=True)
class Target:
    """A goal a figure is held to, and whether this run met it."""

    name: str
    goal: str
    value: float | None
    met: bool | None
    note: str

    def verdict(self) -> str:
        return {True: "met", False: "NOT met", None: "not measured"}[self.met]


def _number(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def figures(
    rows: Iterable[Mapping[str, Any]], native_of: Mapping[tuple[str, str], Reference]
) -> list[Figure]:
    """One figure per bandwidth row, per host link, and per matmul dtype (its largest size that
    ran). Each row carries its ``source``, its ``spec_reference`` (or None) and why it has none
    (``spec_missing``); ``native_of`` maps (probe, dtype) to the native reference, ("copy", "")
    standing for every bandwidth kernel (bytes are bytes)."""
    by_name: dict[str, Figure] = {}
    for row in rows:
        probe, dtype = str(row["probe"]), str(row["dtype"])
        name = f"{probe} {dtype}"
        if probe == "matmul":
            key = ("matmul", dtype)
        elif probe in BANDWIDTH_PROBES:
            key = ("copy", "")
        else:
            key = ("", "")
        spec: Reference | None = row["spec_reference"]
        native = native_of.get(key)
        missing = {}
        if spec is None:
            missing["spec"] = str(row["spec_missing"])
        if native is None:
            missing["native"] = (
                "no native reference for a host link"
                if key == ("", "")
                else "no native reference measured at this dtype"
            )
        value = _number(row, "best")
        figure = Figure(
            name=name,
            probe=probe,
            dtype=dtype,
            unit=str(row["unit"]),
            value=value,
            median=_number(row, "median"),
            cv=_number(row, "cv"),
            status=str(row["status"]),
            source=str(row["source"]),
            spec=spec,
            native=native,
            missing=missing,
        )
        earlier = by_name.get(name)
        # A matmul sweep keeps its largest size that gave a figure (rows come smallest first).
        if earlier is None or value is not None or earlier.value is None:
            by_name[name] = figure
    return list(by_name.values())


def targets(found: Sequence[Figure], validate_error: float | None, gpu: bool) -> list[Target]:
    """The issue's targets, held to whatever ran (stated for an H100/H200: on a CPU they are
    printed for the record)."""
    where = "" if gpu else " (a GPU target; this run is on a CPU)"
    by_name = {f.name: f for f in found}
    triad = by_name.get("triad float32")
    gemm = next((f for f in found if f.probe == "matmul" and f.native is not None), None)
    bf16 = by_name.get("matmul bfloat16")
    gemm = bf16 if bf16 is not None and bf16.native is not None else gemm
    out = []
    value = triad.over(triad.native) if triad else None
    out.append(
        Target(
            "triad float32 over the native device-to-device copy",
            f">= {TRIAD_OVER_NATIVE_COPY:.2f}",
            value,
            None if value is None else value >= TRIAD_OVER_NATIVE_COPY,
            "both measured in this run" + where,
        )
    )
    value = gemm.over(gemm.native) if gemm else None
    dtype = gemm.dtype if gemm else "bfloat16"
    out.append(
        Target(
            f"{dtype} GEMM over the native matmul",
            f">= {BF16_GEMM_OVER_NATIVE:.2f}",
            value,
            None if value is None else value >= BF16_GEMM_OVER_NATIVE,
            ("bfloat16 is the target's dtype; " if dtype != "bfloat16" else "") + "same n" + where,
        )
    )
    out.append(
        Target(
            "validate --quick: decode median |measured/predicted - 1|",
            f"<= {VALIDATE_MEDIAN_ERROR:.2f}",
            validate_error,
            None if validate_error is None else validate_error <= VALIDATE_MEDIAN_ERROR,
            "ceilings measured in turns with each case" + where,
        )
    )
    return out


def _rate(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "bytes_per_s":
        return f"{value / 1e9:,.1f} GB/s"
    if unit == "flops_per_s":
        return f"{value / 1e12:,.2f} TFLOP/s" if value >= 1e12 else f"{value / 1e9:,.1f} GFLOP/s"
    return f"{value:.3f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(summary: Mapping[str, Any]) -> str:
    """The summary as a person reads it: discovery, figures, targets, validate, sources."""
    lines = [
        f"# memwall device check: {summary['device']}",
        "",
        f"- form: {summary['form']}; wall time {summary['wall_s']:.1f} s"
        + ("" if summary["complete"] else f"; INCOMPLETE (was running: {summary['running']})"),
        f"- software: {summary['software']}",
        f"- host: {summary['host']}",
        f"- imported Prefect: {summary['imported']['prefect']}; "
        f"reportlab: {summary['imported']['reportlab']}",
        "",
        "## Discovery",
        "",
        "| JAX device | kind | memory | catalog row | NVML model | NVML memory | SM MHz now/max "
        "| memory MHz now/max | power limit | ECC | NVML matched by |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for d in summary["discovery"]:
        nv = d.get("nvml") or {}

        def gb(value: Any) -> str:
            return "-" if value is None else f"{value / 1e9:,.1f} GB"

        lines.append(
            "| "
            + " | ".join(
                _cell(c)
                for c in (
                    f"{d['id']} ({d['platform']})",
                    d["device_kind"],
                    gb(d["memory_bytes"]),
                    d["accelerator_id"] or "none",
                    nv.get("name", d.get("nvml_absent", "-")),
                    gb(nv.get("memory_bytes")),
                    f"{nv.get('sm_clock_mhz', '-')}/{nv.get('max_sm_clock_mhz', '-')}",
                    f"{nv.get('memory_clock_mhz', '-')}/{nv.get('max_memory_clock_mhz', '-')}",
                    "-" if nv.get("power_limit_w") is None else f"{nv['power_limit_w']:.0f} W",
                    {True: "on", False: "off", None: "-"}[nv.get("ecc_enabled")],
                    nv.get("matched_by", "-"),
                )
            )
            + " |"
        )
    lines += [
        "",
        "## Figures",
        "",
        "Each probe's best (median and CV over its timed calls) beside the catalog's spec and the "
        "native reference measured in this run; a matmul row is its largest size that ran.",
        "",
        "| # | figure | measured | median | CV | status | spec | over spec | native "
        "| over native | kernel |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    found = summary["figures"]
    for i, f in enumerate(found, 1):
        spec, native = f["spec"], f["native"]
        lines.append(
            "| "
            + " | ".join(
                _cell(c)
                for c in (
                    i,
                    f["name"],
                    _rate(f["value"], f["unit"]),
                    _rate(f["median"], f["unit"]),
                    "-" if f["cv"] is None else f"{f['cv']:.1%}",
                    f["status"],
                    _rate(spec["value"], f["unit"]) if spec else "-",
                    _ratio(f["over_spec"]),
                    _rate(native["value"], f["unit"]) if native else "-",
                    _ratio(f["over_native"]),
                    summary["kernels"].get(f["dtype"], "") if f["probe"] == "matmul" else "",
                )
            )
            + " |"
        )
    lines += ["", "## Native references", ""]
    lines += [
        f"- {n['probe']} {n['dtype']}: {_rate(n['best'], n['unit'])}"
        + ("" if n["cv"] is None else f" (CV {n['cv']:.1%})")
        + f"; {n['source']}"
        for n in summary["natives"]
    ] or ["- none measured (see the notes)"]
    lines += ["", "## Targets", "", "| target | goal | this run | verdict | note |"]
    lines.append("|---|---|---|---|---|")
    for t in summary["targets"]:
        lines.append(
            f"| {_cell(t['name'])} | {t['goal']} | {_ratio(t['value'])} | "
            f"{t['verdict']} | "
            f"{_cell(t['note'])} |"
        )
    validate = summary["validate"]
    lines += ["", "## memwall validate --quick", ""]
    if validate["cases"]:
        lines += [
            f"Decode median |measured/predicted - 1| = {_ratio(validate['median_error'])} over "
            f"{validate['decode_cases']} decode case(s). Source: {validate['source']}",
            "",
            "| case | layers | predicted | measured | ratio | status |",
            "|---|---|---|---|---|---|",
        ]
        for c in validate["cases"]:

            def ms(value: Any) -> str:
                return "-" if value is None else f"{value * 1e3:,.2f} ms"

            lines.append(
                f"| {_cell(c['case'])} | {c['layers_run']}/{c['layers_total']} | "
                f"{ms(c['predicted_step_s'])} | {ms(c['measured_step_s'])} | "
                f"{_ratio(c['ratio'])} | {c['status']} |"
            )
    else:
        lines.append(f"Not run: {validate['source']}")
    lines += ["", "## Sources", ""]
    for i, f in enumerate(found, 1):
        lines.append(f"{i}. **{f['name']}**: {f['source']}")
        for key in ("spec", "native"):
            ref = f[key]
            text = ref["source"] if ref else f"none ({f['missing'].get(key, 'not measured')})"
            lines.append(f"   - {key}: {text}")
    if summary["notes"]:
        lines += ["", "## Notes", ""]
        lines += [f"- {_cell(n)}" for n in summary["notes"]]
    return "\n".join(lines) + "\n"


def write(summary: Mapping[str, Any], folder: Path) -> tuple[Path, Path]:
    """Both files, each written whole or not at all (a temporary file renamed)."""
    json_path, md_path = folder / "device-check.json", folder / "device-check.md"
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(strict(summary), indent=2, allow_nan=False) + "\n")
    with atomic_path(md_path) as tmp:
        tmp.write_text(markdown(summary))
    return json_path, md_path
