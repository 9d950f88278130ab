"""The what-if's decision chart, two panels sharing one colour per scenario.

Left: months gained (summed over workloads, against the baseline) against the extra cost of
the purchases; a scenario high and to the left buys the most time per dollar, one on the zero
line bought nothing. Scenarios whose cost is unknown sit in a lane of their own at the right.
Right: how many workloads have starved by each month of the horizon under each scenario, as
steps; lines that coincide are nudged apart by a point so each stays visible.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from reportlab.graphics.shapes import Circle, Line, PolyLine, Rect, String
from reportlab.lib import colors
from reportlab.pdfbase.pdfmetrics import stringWidth

from hardware_profiles.prefixes import si
from reports.charts import PALETTE, Chart, fit
from reports.styles import FONT, INK, MUTED, RULE

DOLLARS = ((1e3, "k"), (1e6, "M"), (1e9, "B"))  # B: billion, as a budget line writes it
UNKNOWN_LANE = 34.0  # points: the lane for scenarios whose cost is unknown
LANE = colors.HexColor("#f1f3f5")


@dataclass(frozen=True)
class ScenarioLine:
    name: str
    extra_cost_usd: float | None
    months_gained: int
    starving: Sequence[int]  # workloads starved by each month of the horizon
    baseline: bool


def starving_by_month(months: Sequence[dt.date], ranking: pd.DataFrame) -> list[int]:
    """How many workloads have starved by each month (starvation month on or before it)."""
    starts = pd.to_datetime(ranking["starve_month"].dropna()).to_numpy(dtype="datetime64[D]")
    edges = np.array(months, dtype="datetime64[D]")
    return [int(n) for n in (starts[None, :] <= edges[:, None]).sum(axis=1)]


def nice_ticks(low: float, high: float, count: int = 5, whole: bool = False) -> list[float]:
    """Round tick values covering [low, high]: steps of 1, 2, 2.5 or 5 times a power of ten
    (whole numbers only when ``whole``: months, workloads)."""
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if whole:
        step = max(1, math.ceil(step))
    first = math.floor(low / step) * step
    return [first + i * step for i in range(math.ceil((high - first) / step) + 1)]


def money(value: float) -> str:
    """``$5.76M``, ``-$250k``: dollars to three digits with k, M or B (billion), whole below $1k."""
    return si(value, spec=".3g", unscaled=".0f", prefixes=DOLLARS, symbol="$", space="")


def _text(x: float, y: float, value: str, size: float = 6.5, **kw: object) -> String:
    return String(x, y, value, fontName=FONT, fontSize=size, fillColor=kw.pop("fill", INK), **kw)


@dataclass(frozen=True)
class _Axis:
    low: float
    high: float
    origin: float
    length: float

    def __call__(self, value: float) -> float:
        return self.origin + self.length * (value - self.low) / (self.high - self.low)


def _label_spot(
    label: str, px: float, py: float, right: float, placed: list[tuple[float, float, float, float]]
) -> tuple[float, float]:
    """Where a point's label goes: beside it, above or below, left or right, the first spot
    that overlaps no label already placed (and stays inside the panel)."""
    width = stringWidth(label, FONT, 6.5)
    spots = [(px + 5, py + 3), (px + 5, py - 9), (px - 5 - width, py + 3), (px - 5 - width, py - 9)]
    spots += [(px - width / 2, py + 3 + 8 * k) for k in range(1, 4)]
    inside = [p for p in spots if p[0] + width <= right] or spots

    def free(x0: float, y0: float) -> bool:
        return all(x0 + width < a or x0 > b or y0 + 7 < c or y0 > d for a, b, c, d in placed)

    x0, y0 = next((p for p in inside if free(*p)), inside[0])
    placed.append((x0, x0 + width, y0, y0 + 7))
    return x0, y0


def _trade_panel(
    chart: Chart, lines: Sequence[ScenarioLine], left: float, bottom: float, w: float, h: float
) -> None:
    known = [s for s in lines if s.extra_cost_usd is not None]
    unknown = [s for s in lines if s.extra_cost_usd is None]
    lane = UNKNOWN_LANE if unknown else 0.0
    costs = [float(s.extra_cost_usd) for s in known if s.extra_cost_usd is not None] + [0.0]
    x_ticks = nice_ticks(min(costs), max(max(costs), 1.0), 4)
    gained = [s.months_gained for s in lines]
    y_ticks = nice_ticks(min(0, *gained), max(1, *gained), 4, whole=True)
    x = _Axis(x_ticks[0], x_ticks[-1], left, w - lane)
    y = _Axis(y_ticks[0], y_ticks[-1], bottom, h)
    chart.add(Rect(left, bottom, w, h, fillColor=None, strokeColor=INK))
    for t in x_ticks:
        chart.add(Line(x(t), bottom, x(t), bottom + h, strokeColor=RULE, strokeWidth=0.3))
        chart.add(_text(x(t), bottom - 9, money(t), textAnchor="middle"))
    for t in y_ticks:
        chart.add(Line(left, y(t), left + w - lane, y(t), strokeColor=RULE, strokeWidth=0.3))
        chart.add(_text(left - 3, y(t) - 2, f"{t:+g}" if t else "0", textAnchor="end"))
    placed: list[tuple[float, float, float, float]] = []
    chart.add(Line(left, y(0), left + w - lane, y(0), strokeColor=MUTED, strokeDashArray=[3, 2]))
    if unknown:
        chart.add(Rect(left + w - lane, bottom, lane, h, fillColor=LANE, strokeColor=INK))
        chart.add(
            _text(left + w - lane / 2, bottom + h - 9, "cost", 6, fill=MUTED, textAnchor="middle")
        )
        chart.add(
            _text(
                left + w - lane / 2, bottom + h - 16, "unknown", 6, fill=MUTED, textAnchor="middle"
            )
        )
    chart.add(
        _text(
            left + w / 2, bottom - 20, "extra cost against the baseline", 7.5, textAnchor="middle"
        )
    )
    chart.add(_text(left, bottom + h + 5, "months gained (summed over workloads)", 7.5))
    for i, s in enumerate(lines):
        colour = PALETTE[i % len(PALETTE)]
        px = left + w - lane / 2 if s.extra_cost_usd is None else x(float(s.extra_cost_usd))
        py = y(s.months_gained)
        chart.add(Circle(px, py, 3.2, fillColor=colour, strokeColor=INK, strokeWidth=0.4))
        if s.extra_cost_usd is None:
            chart.add(_text(px, py + 5, fit(s.name, lane - 2, 6), 6, textAnchor="middle"))
        else:
            label = fit(s.name, w * 0.45, 6.5)
            x0, y0 = _label_spot(label, px, py, left + w - lane, placed)
            chart.add(_text(x0, y0, label))


def _starving_panel(
    chart: Chart,
    lines: Sequence[ScenarioLine],
    months: Sequence[dt.date],
    total: int,
    left: float,
    bottom: float,
    w: float,
    h: float,
) -> None:
    n = len(months)
    y_ticks = nice_ticks(0, max(total, 1), 4, whole=True)
    y = _Axis(0, y_ticks[-1], bottom, h)
    step = w / max(n, 1)
    chart.add(Rect(left, bottom, w, h, fillColor=None, strokeColor=INK))
    for t in y_ticks:
        chart.add(Line(left, y(t), left + w, y(t), strokeColor=RULE, strokeWidth=0.3))
        chart.add(_text(left - 3, y(t) - 2, f"{int(t)}", textAnchor="end"))
    every = max(1, math.ceil(n / 5))
    for t in range(0, n, every):
        chart.add(_text(left + t * step, bottom - 9, f"{months[t]:%Y-%m}", 6, textAnchor="middle"))
    chart.add(_text(left + w / 2, bottom - 20, "month of the horizon", 7.5, textAnchor="middle"))
    chart.add(_text(left, bottom + h + 5, f"workloads starving (of {total})", 7.5))
    for i, s in enumerate(lines):
        nudge = (i - (len(lines) - 1) / 2) * 1.0
        points: list[float] = []
        for t, count in enumerate(s.starving):
            py = y(count) + nudge
            points += [left + t * step, py, left + (t + 1) * step, py]
        colour = PALETTE[i % len(PALETTE)]
        dash = [4, 2] if s.baseline else None
        chart.add(
            PolyLine(
                points,
                strokeColor=colour,
                strokeWidth=1.6 if s.baseline else 1.2,
                strokeDashArray=dash,
            )
        )


def whatif_chart(
    lines: Sequence[ScenarioLine],
    months: Sequence[dt.date],
    total: int,
    width: float,
    height: float = 210,
) -> Chart:
    """Both panels side by side, one legend below naming each scenario in its colour."""
    per_row = 3
    legend_rows = math.ceil(len(lines) / per_row)
    legend = 11.0 * legend_rows
    chart = Chart(width, height + legend)
    bottom, plot_h = legend + 34, height - 52
    panel_w = width / 2 - 50
    _trade_panel(chart, lines, 40, bottom, panel_w, plot_h)
    _starving_panel(chart, lines, months, total, width / 2 + 30, bottom, panel_w, plot_h)
    column_w = width / per_row
    for i, s in enumerate(lines):
        row, column = divmod(i, per_row)
        lx, ly = 40 + column * column_w, legend - 11 * (row + 1) + 3
        colour = PALETTE[i % len(PALETTE)]
        chart.add(Line(lx, ly + 2, lx + 12, ly + 2, strokeColor=colour, strokeWidth=2))
        label = s.name + (" (baseline)" if s.baseline else "")
        label += f": {s.months_gained:+d} mo, " + (
            "cost unknown" if s.extra_cost_usd is None else money(float(s.extra_cost_usd))
        )
        chart.add(_text(lx + 16, ly, fit(label, column_w - 22, 6.5)))
    return chart
