"""The report's vocabulary of cells: how a number, a month, a headroom or user text prints,
and the one table style, shared by every section of the audit and what-if PDFs."""

from __future__ import annotations

import datetime as dt
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
from reportlab.lib.units import cm
from reportlab.platypus import Flowable, Paragraph, Table

from reports.styles import stylesheet, table_style

WIDTH = 18 * cm  # A4 less the margins


def text(value: object) -> str:
    """User text made safe for a Paragraph: markup characters print literally."""
    return escape(str(value), {'"': "&quot;", "'": "&#39;"})


def missing(value: Any) -> bool:
    return value is None or bool(pd.isna(value))


def percent(value: float | None) -> str:
    if value is None or missing(value):
        return "–"
    return f"{100 * value:.1f} %"


def times(value: float | None) -> str:
    """A headroom as ``1.23x``; ``–`` where there is none (no hardware, or no demand yet)."""
    if value is None or missing(value) or not np.isfinite(value):
        return "–"
    return f"{value:.2f}x"


def month(value: dt.date | None) -> str:
    return "never" if value is None or missing(value) else f"{value:%Y-%m}"


def cell(value: object, style: str = "cell") -> Paragraph:
    return Paragraph(text(value), stylesheet()[style])


def data_table(header: list[str], rows: list[list[Any]], widths: list[float]) -> Table:
    data: list[list[Any]] = [[cell(h) for h in header]]
    data += [[c if isinstance(c, Flowable) else cell(c) for c in row] for row in rows]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(table_style())
    return table


def intensity(value: float) -> str:
    """An arithmetic intensity in FLOP/byte: thousands grouped, else 3 significant digits."""
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}"
