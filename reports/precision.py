"""The precision page of the audit: where the memory wall stands at bf16, fp8 and fp4 on each
model in the horizon, and how it moves along the roadmap.

The wall is precision-specific. A model's ridge point at a precision, its dense peak over its
memory bandwidth (FLOP per byte), is the arithmetic intensity a workload needs to stop being
memory-bound there. From H100 to Rubin the bf16 ridge falls while the fp8 and fp4 ridges rise,
so advice to "lower the precision" helps less on new hardware than the bytes saved suggest.
Spec figures only (dense peaks, spec bandwidth): the ridge of the hardware, not of this run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from xml.sax.saxutils import escape

import pandas as pd
from reportlab.graphics.shapes import Circle, Line, PolyLine, Rect
from reportlab.lib.units import cm
from reportlab.platypus import CondPageBreak, Flowable, Paragraph, Spacer, Table

from hardware_profiles.provenance import status_sentence
from reports.charts import PALETTE, Chart, LogScale, _text, fit
from reports.content import AuditReport
from reports.styles import INK, RULE, stylesheet, table_style

RIDGE_PRECISIONS: Final = ("bf16", "fp8", "fp4")
WIDTH: Final = 18 * cm  # A4 less the margins, as the rest of the audit


def _paragraph(value: str, style: str) -> Paragraph:
    """Text (model names come from user catalogs) escaped: a Paragraph reads markup."""
    return Paragraph(escape(value), stylesheet()[style])


def _table(header: list[str], rows: list[list[str]], widths: list[float]) -> Table:
    data = [[_paragraph(c, "cell") for c in row] for row in [header, *rows]]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(table_style())
    return table


@dataclass(frozen=True)
class RidgePoint:
    label: str
    when: dt.date
    ridge_flops_per_byte: float


def ridge_table(hardware: pd.DataFrame) -> pd.DataFrame:
    """Per model: when it arrives (release date, else its first month in the roadmap), status
    and the spec ridge at each precision (None where the model has no dense peak there)."""
    rows = []
    records: list[dict[str, Any]] = hardware.to_dict("records")  # type: ignore[assignment]
    for r in records:
        bandwidth = float(r["mem_bandwidth_bytes_per_s"])
        row: dict[str, Any] = {
            "accelerator_id": r["accelerator_id"],
            "name": r["name"],
            "status": r.get("status") or "unknown",
            "when": _when(r),
            "first_month": r.get("first_month"),
            "mem_bandwidth_bytes_per_s": bandwidth,
        }
        for p in RIDGE_PRECISIONS:
            peak = r.get(f"peak_flops_per_s_{p}")
            row[f"ridge_{p}"] = None if peak is None or pd.isna(peak) else float(peak) / bandwidth
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["when", "accelerator_id"], kind="stable")


def _when(r: dict[str, Any]) -> dt.date:
    released = r.get("release_date")
    if released is not None and not pd.isna(released):
        return released  # type: ignore[no-any-return]
    return r["first_month"]  # type: ignore[no-any-return]


def ridge_chart(
    series: Mapping[str, Sequence[RidgePoint]], width: float, height: float = 220
) -> Chart:
    """Ridge point (FLOP/byte, log) against date, one line per precision through the models in
    date order, each point labelled with its model."""
    drawing = Chart(width, height + 14)
    points = [p for s in series.values() for p in s]
    left, bottom, plot_width = 45.0, 40.0, width - 60
    y = LogScale.covering(
        [p.ridge_flops_per_byte for p in points] or [10.0, 1000.0], bottom, height - 60
    )
    days = [p.when.toordinal() for p in points] or [dt.date.today().toordinal()]
    first, last = min(days) - 120, max(days) + 120

    def x(day: dt.date) -> float:
        return left + plot_width * (day.toordinal() - first) / (last - first)

    drawing.add(Rect(left, y.origin, plot_width, y.length, fillColor=None, strokeColor=INK))
    for e in y.decades():
        py = y(10.0**e)
        drawing.add(Line(left, py, left + plot_width, py, strokeColor=RULE, strokeWidth=0.3))
        drawing.add(_text(left - 3, py - 2, f"{10.0**e:g}", textAnchor="end"))
    for year in range(dt.date.fromordinal(first).year + 1, dt.date.fromordinal(last).year + 1):
        px = x(dt.date(year, 1, 1))
        drawing.add(Line(px, y.origin, px, y.origin + y.length, strokeColor=RULE, strokeWidth=0.3))
        drawing.add(_text(px, y.origin - 9, str(year), textAnchor="middle"))
    drawing.add(_text(left, y.origin + y.length + 5, "ridge point (FLOP/byte, dense spec)", 7.5))
    drawing.add(
        _text(
            left + plot_width / 2,
            y.origin - 22,
            "release date (else roadmap month)",
            7.5,
            textAnchor="middle",
        )
    )
    for i, (precision, ridge_points) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        ordered = sorted(ridge_points, key=lambda p: p.when)
        coords: list[float] = []
        for p in ordered:
            coords += [x(p.when), y(p.ridge_flops_per_byte)]
        if len(ordered) > 1:
            drawing.add(PolyLine(coords, strokeColor=colour, strokeWidth=1.1))
        for p in ordered:
            px, py = x(p.when), y(p.ridge_flops_per_byte)
            drawing.add(Circle(px, py, 2.2, fillColor=colour, strokeWidth=0))
            drawing.add(_text(px + 3, py + 2.5, fit(p.label, 60, 5.5), 5.5, fill=colour))
        lx = left + i * 80
        drawing.add(Line(lx, height + 6, lx + 12, height + 6, strokeColor=colour, strokeWidth=1.5))
        drawing.add(_text(lx + 16, height + 4, precision, 7))
    return drawing


def _ridge(value: Any) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:,.0f}"


def status_note(report: AuditReport) -> list[Flowable]:
    """The sentence naming announced or preliminary models the projection uses, if any."""
    hardware = report.findings.hardware
    sentence = None if hardware.empty else status_sentence(hardware)
    return [] if sentence is None else [_paragraph(sentence, "body")]


def precision_section(report: AuditReport) -> list[Flowable]:
    """The ridge table and chart for the models in the horizon; nothing when there are none."""
    hardware = report.findings.hardware
    if hardware.empty:
        return []
    s = stylesheet()
    table = ridge_table(hardware)
    rows = [
        [
            r["accelerator_id"],
            r["status"],
            f"{r['when']:%Y-%m}",
            "–" if r["first_month"] is None else f"{r['first_month']:%Y-%m}",
            f"{r['mem_bandwidth_bytes_per_s'] / 1e12:.3g} TB/s",
            *(_ridge(r[f"ridge_{p}"]) for p in RIDGE_PRECISIONS),
        ]
        for r in table.to_dict("records")
    ]
    series = {
        p: [
            RidgePoint(str(r["accelerator_id"]), r["when"], float(r[f"ridge_{p}"]))
            for r in table.to_dict("records")
            if r[f"ridge_{p}"] is not None and not pd.isna(r[f"ridge_{p}"])
        ]
        for p in RIDGE_PRECISIONS
    }
    return [
        CondPageBreak(12 * cm),
        Paragraph("Ridge points by precision", s["h1"]),
        _paragraph(
            (
                "Ridge = dense spec peak at the precision / spec memory bandwidth (FLOP per "
                "byte): a workload whose arithmetic intensity is below it is memory-bound on "
                "that model. released: the catalog's release date (often the year only); in "
                "fleet: the first month of the horizon a pool holds it. Lowering the "
                "precision halves the bytes but, on hardware whose "
                "narrower units are faster, raises the ridge, so part of the saving goes to "
                "compute that still waits on memory. – = no dense peak at that precision. "
                "Figures of announced or preliminary models are as firm as their status."
            ),
            "small",
        ),
        Spacer(1, 4),
        _table(
            [
                "model",
                "status",
                "released",
                "in fleet",
                "bandwidth",
                "bf16 ridge",
                "fp8 ridge",
                "fp4 ridge",
            ],
            rows,
            [4.2 * cm, 2.0 * cm, 1.6 * cm, 1.6 * cm, 2.0 * cm, 2.2 * cm, 2.2 * cm, 2.2 * cm],
        ),
        Spacer(1, 8),
        ridge_chart(series, WIDTH),
    ]
