"""The wall timeline: a Gantt of the top workloads, one row each, one cell per month, coloured
fine / tight / past a wall (and which), not served or not started yet.

It answers "when" at a glance where the headroom lines cross and overlap: a reader follows one
row left to right and sees the month it turns red, and the roadmap change that turns it back.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from reportlab.graphics.shapes import Rect
from reportlab.lib import colors

from reports.charts import Chart, _text, fit
from reports.styles import INK, MUTED, RULE
from tasks.analysis.findings import TimelineRow
from tasks.analysis.walls.walls import FINE, NO_DEMAND, NOT_SERVED, PAST_WALL, TIGHT, WALLS

STATE_COLOURS = {
    NO_DEMAND: colors.white,
    NOT_SERVED: colors.HexColor("#cbd2d9"),
    FINE: colors.HexColor("#a8d5a2"),
    TIGHT: colors.HexColor("#f6d37a"),
    PAST_WALL: colors.HexColor("#d9534f"),
}
STATE_NAMES = {
    FINE: "fine (headroom >= 1.2x)",
    TIGHT: "tight (1x to 1.2x)",
    PAST_WALL: "past a wall",
    NOT_SERVED: "no hardware yet",
    NO_DEMAND: "not started",
}
WALL_MARKS = {
    "bandwidth": "bw",
    "capacity": "cap",
    "latency": "lat",
    "network": "net",
    "compute": "cmp",
}


def wall_timeline(
    months: Sequence[dt.date], rows: Sequence[TimelineRow], width: float, row_height: float = 13
) -> Chart:
    label_width = 150.0
    legend = 24.0
    height = legend + 14 + row_height * len(rows) + 4
    drawing = Chart(width, height)
    n = len(months)
    cell = (width - label_width - 5) / max(n, 1)
    top = height - 4
    for i, row in enumerate(rows):
        y = top - row_height * (i + 1)
        drawing.add(_text(0, y + 3.5, fit(row.label, label_width - 6, 6.5)))
        for t, (state, wall) in enumerate(zip(row.states, row.walls, strict=True)):
            x = label_width + t * cell
            drawing.add(
                Rect(
                    x,
                    y + 1,
                    cell - 1,
                    row_height - 2,
                    fillColor=STATE_COLOURS[state],
                    strokeColor=RULE if state == NO_DEMAND else None,
                    strokeWidth=0.3,
                )
            )
            if state == PAST_WALL and wall >= 0:
                mark = WALL_MARKS[WALLS[wall]]
                drawing.add(
                    _text(x + cell / 2, y + 4, mark, 5, fill=colors.white, textAnchor="middle")
                )
    axis = top - row_height * len(rows) - 9
    step = max(1, math.ceil(n / 9))
    for t in range(0, n, step):
        drawing.add(
            _text(
                label_width + (t + 0.5) * cell, axis, f"{months[t]:%Y-%m}", 6, textAnchor="middle"
            )
        )
    x = 0.0
    for state in (FINE, TIGHT, PAST_WALL, NOT_SERVED, NO_DEMAND):
        drawing.add(
            Rect(x, 10, 8, 8, fillColor=STATE_COLOURS[state], strokeColor=INK, strokeWidth=0.3)
        )
        drawing.add(_text(x + 11, 11.5, STATE_NAMES[state], 6.5))
        x += 20 + 6.5 * 0.55 * len(STATE_NAMES[state])
    marks = ", ".join(f"{m} = {w}" for w, m in WALL_MARKS.items())
    drawing.add(_text(0, 0, f"Walls: {marks}", 6, fill=MUTED))
    return drawing
