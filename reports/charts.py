"""The report's charts as reportlab vector drawings: the roofline and the headroom timeline.

Both are drawn from primitives on explicit log scales (reportlab's chart classes have no
log-log plot), with every string in the embedded font; text in a Drawing is drawn literally,
so user text needs no escaping here, only truncating.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from reportlab.graphics.shapes import Circle, Drawing, Line, Polygon, PolyLine, Rect, String
from reportlab.lib import colors
from reportlab.pdfbase.pdfmetrics import stringWidth

from hardware_profiles.prefixes import EXA, PREFIXES, si
from reports.styles import ACCENT, FONT, INK, MUTED, RULE
from tasks.analysis.findings import Ceiling, Event, Point, Series

PALETTE = (
    colors.HexColor("#1f77b4"),
    colors.HexColor("#ff7f0e"),
    colors.HexColor("#2ca02c"),
    colors.HexColor("#9467bd"),
    colors.HexColor("#8c564b"),
    colors.HexColor("#e377c2"),
    colors.HexColor("#17becf"),
    colors.HexColor("#bcbd22"),
)


class Chart(Drawing):  # type: ignore[misc]
    """A Drawing whose renderer starts in the embedded font, not reportlab's default
    Helvetica (which it would otherwise reference, unembedded, in the PDF)."""

    initialFontName = FONT


def fit(text: str, width: float, size: float) -> str:
    """``text`` cut with an ellipsis to fit ``width`` points in the report font."""
    if stringWidth(text, FONT, size) <= width:
        return text
    while text and stringWidth(text + "…", FONT, size) > width:
        text = text[:-1]
    return text + "…"


def _decade_label(exponent: int) -> str:
    """10**exponent as a spec sheet writes it: 0.1, 1, 10, 100, 1 k, ..., 100 T."""
    return si(10.0**exponent, spec="g", prefixes=(*PREFIXES, EXA)).rstrip()


@dataclass(frozen=True)
class LogScale:
    low: float  # log10 of the lowest value shown
    high: float
    origin: float  # drawing coordinate of ``low``
    length: float

    @staticmethod
    def covering(values: Sequence[float], origin: float, length: float) -> LogScale:
        finite = [math.log10(v) for v in values if v > 0 and math.isfinite(v)]
        low, high = (math.floor(min(finite)), math.ceil(max(finite))) if finite else (0, 1)
        return LogScale(low, max(high, low + 1), origin, length)

    def __call__(self, value: float) -> float:
        position = (math.log10(value) - self.low) / (self.high - self.low)
        return self.origin + self.length * position

    def decades(self) -> range:
        return range(int(self.low), int(self.high) + 1)


def _text(x: float, y: float, value: str, size: float = 6.5, **kw: object) -> String:
    return String(x, y, value, fontName=FONT, fontSize=size, fillColor=kw.pop("fill", INK), **kw)


def _frame(
    drawing: Drawing, x: LogScale, y: LogScale, x_title: str, y_title: str, unit_y: str
) -> None:
    left, bottom = x.origin, y.origin
    drawing.add(Rect(left, bottom, x.length, y.length, fillColor=None, strokeColor=INK))
    for e in x.decades():
        px = x(10.0**e)
        drawing.add(Line(px, bottom, px, bottom + y.length, strokeColor=RULE, strokeWidth=0.3))
        drawing.add(_text(px, bottom - 9, _decade_label(e), textAnchor="middle"))
    for e in y.decades():
        py = y(10.0**e)
        drawing.add(Line(left, py, left + x.length, py, strokeColor=RULE, strokeWidth=0.3))
        drawing.add(_text(left - 3, py - 2, _decade_label(e) + unit_y, textAnchor="end"))
    drawing.add(_text(left + x.length / 2, bottom - 20, x_title, 7.5, textAnchor="middle"))
    drawing.add(_text(left, bottom + y.length + 5, y_title, 7.5))


def roofline_chart(
    ceilings: Sequence[Ceiling], points: Sequence[Point], width: float, height: float = 250
) -> Chart:
    """Log-log roofline: each model's calibrated min(F, AI·BW), workloads as points at their
    arithmetic intensity and attainable FLOP/s per device today."""
    drawing = Chart(width, height)
    legend_width = 150
    ridges = [c.flops_per_s / c.bandwidth_bytes_per_s for c in ceilings]
    ai_values = [p.intensity for p in points] + ridges + [r / 10 for r in ridges]
    x = LogScale.covering(ai_values, 45, width - 60 - legend_width)
    low_flops = [p.flops_per_s for p in points] + [
        10.0**x.low * c.bandwidth_bytes_per_s for c in ceilings
    ]
    y = LogScale.covering(low_flops + [c.flops_per_s for c in ceilings], 35, height - 50)
    _frame(drawing, x, y, "arithmetic intensity (FLOP/byte)", "attainable FLOP/s per device", "")
    x_low, x_high = 10.0**x.low, 10.0**x.high
    for i, (ceiling, ridge) in enumerate(zip(ceilings, ridges, strict=True)):
        colour = PALETTE[i % len(PALETTE)]
        start = max(x_low, 10.0**y.low / ceiling.bandwidth_bytes_per_s)
        line = [start, start * ceiling.bandwidth_bytes_per_s, ridge, ceiling.flops_per_s]
        line += [x_high, ceiling.flops_per_s]
        drawing.add(
            PolyLine(
                [x(v) if k % 2 == 0 else y(v) for k, v in enumerate(line)],
                strokeColor=colour,
                strokeWidth=1.2,
            )
        )
        ly = height - 20 - 11 * i
        lx = width - legend_width + 5
        drawing.add(Line(lx, ly + 2, lx + 12, ly + 2, strokeColor=colour, strokeWidth=1.5))
        drawing.add(
            _text(lx + 16, ly, fit(f"{ceiling.name} (ridge {ridge:.0f})", legend_width - 20, 6.5))
        )
    for point in points:
        px, py = x(point.intensity), y(point.flops_per_s)
        fill = ACCENT if point.highlight else MUTED
        drawing.add(Circle(px, py, 2.6 if point.highlight else 1.6, fillColor=fill, strokeWidth=0))
        if point.highlight:
            drawing.add(_text(px + 3.5, py + 2, point.label, 6.5, fill=ACCENT))
    return drawing


def headroom_chart(
    months: Sequence[dt.date],
    series: Sequence[Series],
    events: Sequence[Event],
    width: float,
    height: float = 260,
) -> Chart:
    """Headroom (supply over demand, log scale) per month for the top workloads; below 1 the
    demand is not met; a shaded band from P10 to P90 where the series has one. Roadmap
    events are dotted verticals, numbered, listed below."""
    legend_rows = math.ceil(len(series) / 2)
    event_rows = len(events)
    drawing = Chart(width, height + 10 * (legend_rows + event_rows))
    base = 10 * (legend_rows + event_rows)
    n = len(months)
    left, plot_width = 45.0, width - 60
    x_step = plot_width / max(n - 1, 1)
    values = [v for s in series for v in s.values] + [0.5, 2.0]
    values += [v for s in series for v in (*(s.low or ()), *(s.high or ()))]
    y = LogScale.covering(values, base + 35, height - 50)
    drawing.add(Rect(left, y.origin, plot_width, y.length, fillColor=None, strokeColor=INK))
    for e in y.decades():
        py = y(10.0**e)
        drawing.add(Line(left, py, left + plot_width, py, strokeColor=RULE, strokeWidth=0.3))
        drawing.add(_text(left - 3, py - 2, f"{10.0**e:g}x", textAnchor="end"))
    step = max(1, math.ceil(n / 12))
    for t in range(0, n, step):
        drawing.add(
            _text(left + t * x_step, y.origin - 9, f"{months[t]:%Y-%m}", 6, textAnchor="middle")
        )
    one = y(1.0)
    drawing.add(Line(left, one, left + plot_width, one, strokeColor=ACCENT, strokeDashArray=[3, 2]))
    drawing.add(
        _text(left + plot_width - 2, one + 2, "demand met (1x)", 6, fill=ACCENT, textAnchor="end")
    )
    for k, event in enumerate(events):
        ex = left + event.month * x_step
        drawing.add(
            Line(ex, y.origin, ex, y.origin + y.length, strokeColor=MUTED, strokeDashArray=[1, 2])
        )
        drawing.add(_text(ex + 1.5, y.origin + y.length - 8, str(k + 1), 6, fill=MUTED))
    floor = 10.0**y.low
    for i, s in enumerate(series):
        if s.low is None or s.high is None:
            continue
        colour = PALETTE[i % len(PALETTE)]
        outline: list[float] = []
        for t, v in [*enumerate(s.high), *reversed(list(enumerate(s.low)))]:
            outline += [left + t * x_step, y(min(max(v, floor), 10.0**y.high))]
        shade = colors.Color(colour.red, colour.green, colour.blue, alpha=0.12)
        drawing.add(Polygon(outline, fillColor=shade, strokeColor=None, strokeWidth=0))
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        points: list[float] = []
        for t, v in enumerate(s.values):
            points += [left + t * x_step, y(max(v, 10.0**y.low))]
        drawing.add(PolyLine(points, strokeColor=colour, strokeWidth=1.2))
        row, column = divmod(i, 2)
        lx = left + column * plot_width / 2
        ly = base - 10 * (row + 1) + 5
        drawing.add(Line(lx, ly + 2, lx + 12, ly + 2, strokeColor=colour, strokeWidth=1.5))
        drawing.add(_text(lx + 16, ly, fit(s.label, plot_width / 2 - 22, 6.5)))
    for k, event in enumerate(events):
        ly = base - 10 * (legend_rows + k + 1) + 5
        drawing.add(_text(left, ly, fit(f"{k + 1}. {event.label}", plot_width, 6.5), fill=MUTED))
    return drawing
