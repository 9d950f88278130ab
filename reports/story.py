"""The audit as a list of reportlab flowables: pure, tables in, story out, no file I/O.

All user-supplied text (workload names, owners, device names) passes through :func:`text`,
which escapes it: reportlab's Paragraph reads markup, and a workload named ``<b>x</b>`` must
print as written, not in bold (or crash the build with a malformed tag).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import pandas as pd
from reportlab.lib.units import cm
from reportlab.platypus import Flowable, Paragraph, Spacer, Table

from hardware_profiles.schema import Accelerator
from reports.styles import STATUS_COLOURS, stylesheet, table_style

_PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


@dataclass(frozen=True)
class AuditReport:
    """Everything the PDF shows, already computed."""

    run_id: str
    generated_at: dt.datetime
    host: str
    accelerators: list[Accelerator]
    measurements: pd.DataFrame
    ranking: pd.DataFrame
    calibration_defaults: dict[str, float]
    sources: dict[str, str]
    settings: dict[str, Any] = field(default_factory=dict)
    software: str = ""

    @property
    def title(self) -> str:
        return f"memwall audit of {self.host}"


def text(value: object) -> str:
    """User text made safe for a Paragraph: markup characters print literally."""
    return escape(str(value), {'"': "&quot;", "'": "&#39;"})


def si(value: float | None, unit: str, digits: int = 3) -> str:
    """``1.96e10, 'B/s'`` -> ``'19.6 GB/s'`` (decimal prefixes, as spec sheets use)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}"


def percent(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:.1f} %"


def _cell(value: object, style: str = "cell") -> Paragraph:
    return Paragraph(text(value), stylesheet()[style])


def _table(header: list[str], rows: list[list[Any]], widths: list[float]) -> Table:
    data: list[list[Any]] = [[_cell(h) for h in header]]
    data += [[c if isinstance(c, Flowable) else _cell(c) for c in row] for row in rows]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(table_style())
    return table


def headline(report: AuditReport) -> str:
    ranking = report.ranking
    memory_bound = ranking[ranking["bound"] == "memory"]
    total = len(ranking)
    if memory_bound.empty:
        return f"None of {total} workloads is memory-bound on today's fleet."
    worst = ranking.iloc[0]
    return (
        f"{len(memory_bound)} of {total} workloads are memory-bound on today's fleet; the most "
        f"starved is {worst['name']} at {percent(worst['utilization_now'])} compute utilisation."
    )


def _status_cell(status: str) -> Paragraph:
    colour = STATUS_COLOURS.get(status)
    hex_colour = colour.hexval()[2:] if colour is not None else "000000"
    return Paragraph(f'<font color="#{hex_colour}">{text(status)}</font>', stylesheet()["cell"])


def measurements_table(measurements: pd.DataFrame) -> Table:
    rows = []
    for _, m in measurements.iterrows():
        unit = "B/s" if m["unit"] == "bytes_per_s" else "FLOP/s"
        rows.append(
            [
                f"{m['device_kind']} #{m['device_index']}",
                m["probe"],
                m["dtype"],
                si(m["working_set_bytes"], "B"),
                si(m["best"], unit),
                si(m["median"], unit),
                percent(m["cv"]),
                si(m["spec"], unit),
                percent(m["efficiency"]),
                _status_cell(str(m["status"])),
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
            "efficiency",
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


def ranking_table(ranking: pd.DataFrame) -> Table:
    rows = [
        [
            r["rank"],
            r["name"],
            r["pool"],
            r["phase"],
            r["precision"],
            f"{r['arithmetic_intensity_flops_per_byte']:.3g}",
            f"{r['ridge_flops_per_byte']:.3g}",
            r["bound"],
            percent(r["utilization_now"]),
            f"{r['headroom_now']:.2f}x",
        ]
        for _, r in ranking.iterrows()
    ]
    return _table(
        [
            "#",
            "workload",
            "pool",
            "phase",
            "prec.",
            "AI (FLOP/B)",
            "ridge",
            "bound",
            "utilisation",
            "headroom",
        ],
        rows,
        [
            0.7 * cm,
            5.6 * cm,
            1.7 * cm,
            1.4 * cm,
            1.1 * cm,
            1.6 * cm,
            1.3 * cm,
            1.4 * cm,
            1.6 * cm,
            1.5 * cm,
        ],
    )


def story(report: AuditReport) -> list[Flowable]:
    s = stylesheet()
    flow: list[Flowable] = [
        Paragraph(text(report.title), s["title"]),
        Paragraph(
            text(f"Run {report.run_id} · {report.generated_at:%Y-%m-%d %H:%M} UTC"), s["muted"]
        ),
        Paragraph(text(headline(report)), s["headline"]),
        Paragraph("Accelerators on this host", s["h1"]),
    ]
    flow.append(
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
            [0.7 * cm, 1.6 * cm, 4.2 * cm, 1.8 * cm, 3.4 * cm, 5.3 * cm],
        )
    )
    flow += [
        Paragraph("Measured vs spec", s["h1"]),
        Paragraph(
            "Best and median of the timed repetitions; CV is the coefficient of variation of "
            "the times; efficiency is best over the catalog's dense spec. A result is "
            "<i>unstable</i> when CV &gt; 5 % or best/median &gt; 1.1, <i>failed</i> when its "
            "output does not match the value derived by hand.",
            s["small"],
        ),
        Spacer(1, 4),
        measurements_table(report.measurements),
        Paragraph("Workloads, most bandwidth-starved first", s["h1"]),
        Paragraph(
            "Roofline on each pool's fleet today: attainable = min(F, AI·BW) with calibrated "
            "ceilings; utilisation = attainable / F; headroom = the workload's share of the "
            "pool's attainable rate over its demand.",
            s["small"],
        ),
        Spacer(1, 4),
        ranking_table(report.ranking),
        Paragraph("Assumptions and method", s["h1"]),
    ]
    defaults = report.calibration_defaults
    notes = [
        f"Efficiency defaults for models not measured in this run: bandwidth "
        f"{defaults.get('bandwidth', 0):.2f}, compute {defaults.get('flops', 0):.2f}.",
        *(f"{name}: {where}" for name, where in report.sources.items()),
        *(f"{k}: {v}" for k, v in report.settings.items()),
        f"Software: {report.software}",
    ]
    flow += [Paragraph(text(n), s["small"]) for n in notes]
    return flow
