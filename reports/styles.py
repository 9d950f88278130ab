"""Fonts, paragraph and table styles of the audit PDF.

Bitstream Vera ships with reportlab, so the fonts are embedded (as subsets) and the PDF looks
the same on every reader, with no font files to install.
"""

from __future__ import annotations

from functools import cache
from typing import Final

from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle, StyleSheet1, getSampleStyleSheet
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import TableStyle

FONT: Final = "Vera"
FONT_BOLD: Final = "VeraBd"
INK: Final = colors.HexColor("#1f2933")
ACCENT: Final = colors.HexColor("#b83227")
MUTED: Final = colors.HexColor("#616e7c")
RULE: Final = colors.HexColor("#cbd2d9")
HEADER_FILL: Final = colors.HexColor("#e4e7eb")
STATUS_COLOURS: Final = {
    "ok": colors.HexColor("#2f8132"),
    "unstable": colors.HexColor("#b7791f"),
    "waived": MUTED,
    "failed": ACCENT,
}


@cache
def register_fonts() -> None:
    pdfmetrics.registerFont(TTFont(FONT, "Vera.ttf"))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, "VeraBd.ttf"))
    pdfmetrics.registerFont(TTFont("VeraIt", "VeraIt.ttf"))
    pdfmetrics.registerFont(TTFont("VeraBI", "VeraBI.ttf"))
    pdfmetrics.registerFontFamily(
        FONT, normal=FONT, bold=FONT_BOLD, italic="VeraIt", boldItalic="VeraBI"
    )


@cache
def stylesheet() -> StyleSheet1:
    register_fonts()
    base = getSampleStyleSheet()
    sheet = StyleSheet1()
    sheet.add(
        ParagraphStyle(
            "body", parent=base["BodyText"], fontName=FONT, fontSize=9.5, leading=13, textColor=INK
        )
    )
    sheet.add(ParagraphStyle("small", parent=sheet["body"], fontSize=7.5, leading=9.5))
    sheet.add(ParagraphStyle("cell", parent=sheet["body"], fontSize=7.5, leading=9))
    sheet.add(
        ParagraphStyle(
            "title", parent=sheet["body"], fontName=FONT_BOLD, fontSize=22, leading=27, spaceAfter=6
        )
    )
    sheet.add(
        ParagraphStyle(
            "headline",
            parent=sheet["body"],
            fontName=FONT_BOLD,
            fontSize=13,
            leading=17,
            textColor=ACCENT,
            spaceBefore=6,
            spaceAfter=8,
        )
    )
    sheet.add(
        ParagraphStyle(
            "h1",
            parent=sheet["body"],
            fontName=FONT_BOLD,
            fontSize=14,
            leading=18,
            spaceBefore=10,
            spaceAfter=6,
        )
    )
    sheet.add(
        ParagraphStyle(
            "h2",
            parent=sheet["body"],
            fontName=FONT_BOLD,
            fontSize=11,
            leading=14,
            spaceBefore=8,
            spaceAfter=4,
        )
    )
    sheet.add(ParagraphStyle("muted", parent=sheet["body"], textColor=MUTED))
    sheet.add(
        ParagraphStyle("cover", parent=sheet["headline"], fontSize=17, leading=23, spaceBefore=0)
    )
    return sheet


def table_style(header_rows: int = 1) -> TableStyle:
    return TableStyle(
        [
            ("FONTNAME", (0, 0), (-1, -1), FONT),
            ("FONTSIZE", (0, 0), (-1, -1), 7.5),
            ("FONTNAME", (0, 0), (-1, header_rows - 1), FONT_BOLD),
            ("BACKGROUND", (0, 0), (-1, header_rows - 1), HEADER_FILL),
            ("LINEBELOW", (0, header_rows - 1), (-1, header_rows - 1), 0.6, INK),
            ("LINEBELOW", (0, header_rows), (-1, -1), 0.25, RULE),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("TOPPADDING", (0, 0), (-1, -1), 2),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ("LEFTPADDING", (0, 0), (-1, -1), 3),
            ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ]
    )


def key_style(label_columns: tuple[int, ...] = (0,)) -> TableStyle:
    """Label/value pairs without a header row (the cover's key figures, a workload's facts)."""
    return TableStyle(
        [
            ("FONTNAME", (0, 0), (-1, -1), FONT),
            *(("FONTNAME", (c, 0), (c, -1), FONT_BOLD) for c in label_columns),
            ("FONTSIZE", (0, 0), (-1, -1), 9),
            ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
            ("TOPPADDING", (0, 0), (-1, -1), 3),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
        ]
    )
