"""Fleet health on the report's first page: one sentence ("37 of 40 devices within 5 % of their
model's median; 3 stragglers: ...") and a per-model spread chart, so a reader sees at once
whether the fleet is good and which devices are not. Pure: trend rows in, flowables out.
"""

from __future__ import annotations

from typing import Final
from xml.sax.saxutils import escape

import pandas as pd
from reportlab.graphics.shapes import Circle, Line, String
from reportlab.platypus import Flowable, Paragraph

from reports.charts import Chart, fit
from reports.styles import ACCENT, FONT, INK, MUTED, RULE, STATUS_COLOURS, stylesheet
from tasks.analysis.health import Health

MAX_ROWS: Final = 14  # model x figure rows in the chart; the trend table has every one
_WIDTH: Final = 480.0
_LABEL: Final = 150.0
_ROW: Final = 14.0


def _text(x: float, y: float, value: str, size: float = 6.5, **kw: object) -> String:
    return String(x, y, value, fontName=FONT, fontSize=size, fillColor=kw.pop("fill", INK), **kw)


def spread_chart(rows: pd.DataFrame, run_id: str, fraction: float) -> Chart | None:
    """Each device's figure against its model's median in this run, one row per model and
    figure: a dot per device, red when it is a straggler, a dashed line at the threshold."""
    now = rows[(rows["run_id"] == run_id) & rows["vs_model"].notna()]
    if now.empty:
        return None
    groups = list(now.groupby(["device_kind", "figure"], sort=True))[:MAX_ROWS]
    changes = [100 * float(v) for v in now["vs_model"]]
    low = min(-2 * 100 * fraction, min(changes) - 2)
    high = max(100 * fraction, max(changes) + 2)
    plot = _WIDTH - _LABEL - 10

    def x(percent: float) -> float:
        return _LABEL + plot * (percent - low) / (high - low)

    height = _ROW * len(groups) + 34
    chart = Chart(_WIDTH, height)
    top = height - 8
    bottom = top - _ROW * len(groups)
    for percent, colour, dash in ((0.0, INK, None), (-100 * fraction, ACCENT, [2, 2])):
        chart.add(
            Line(x(percent), bottom, x(percent), top, strokeColor=colour, strokeDashArray=dash)
        )
    for i, ((kind, figure), group) in enumerate(groups):
        y = top - _ROW * (i + 0.5)
        chart.add(Line(_LABEL, y, _LABEL + plot, y, strokeColor=RULE, strokeWidth=0.3))
        chart.add(
            _text(_LABEL - 4, y - 2, fit(f"{kind} · {figure}", _LABEL - 8, 6.5), textAnchor="end")
        )
        for _, r in group.iterrows():
            slow = bool(r["straggler"])
            colour = ACCENT if slow else STATUS_COLOURS["ok"]
            chart.add(
                Circle(x(100 * float(r["vs_model"])), y, 2.6, fillColor=colour, strokeColor=None)
            )
    for percent in (low, -100 * fraction, 0.0, high):
        chart.add(
            _text(x(percent), bottom - 9, f"{percent:+.0f} %", textAnchor="middle", fill=MUTED)
        )
    chart.add(
        _text(
            _LABEL + plot / 2,
            bottom - 20,
            "each device against its model's median in this run (red: straggler)",
            7,
            textAnchor="middle",
        )
    )
    return chart


def health_section(found: Health, rows: pd.DataFrame, run_id: str) -> list[Flowable]:
    s = stylesheet()
    flow: list[Flowable] = [
        Paragraph("Fleet health", s["h1"]),
        Paragraph(escape(found.headline), s["headline"]),
    ]
    chart = spread_chart(rows, run_id, found.fraction)
    if chart is not None:
        flow.append(chart)
    return flow
