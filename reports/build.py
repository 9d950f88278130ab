"""Writing a report PDF: page furniture, metadata, embedded fonts, and an atomic rename."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import cm
from reportlab.platypus import Flowable, SimpleDocTemplate

from hardware_profiles.parquet import atomic_path
from reports.content import AuditReport
from reports.story import story
from reports.styles import FONT, MUTED, register_fonts

AUTHOR = "memwall"


def _footer(canvas: Any, doc: Any) -> None:
    canvas.saveState()
    canvas.setFont(FONT, 7.5)
    canvas.setFillColor(MUTED)
    canvas.drawString(doc.leftMargin, 1.0 * cm, doc.title)
    canvas.drawRightString(A4[0] - doc.rightMargin, 1.0 * cm, f"page {doc.page}")
    canvas.restoreState()


def write_flowables(
    flowables: Sequence[Flowable], path: str | Path, *, title: str, subject: str
) -> Path:
    """Render ``flowables`` to ``path``; a failure leaves no file (and no temporary file).

    The canvas starts in the embedded font: reportlab's default initial font is Helvetica,
    which it would reference (unembedded) on every page even if no text used it.
    """
    path = Path(path)
    register_fonts()
    with atomic_path(path) as tmp:
        doc = SimpleDocTemplate(
            str(tmp),
            pagesize=A4,
            leftMargin=1.5 * cm,
            rightMargin=1.5 * cm,
            topMargin=1.5 * cm,
            bottomMargin=1.8 * cm,
            title=title,
            author=AUTHOR,
            subject=subject,
            creator="memwall",
            initialFontName=FONT,
        )
        doc.build(list(flowables), onFirstPage=_footer, onLaterPages=_footer)
    return path


def write_pdf(
    report: AuditReport,
    path: str | Path,
    front: Sequence[Flowable] = (),
    back: Sequence[Flowable] = (),
) -> Path:
    """Render ``report`` to ``path`` between ``front`` (a fleet's hosts and trend) and
    ``back`` (one host's trend), where given."""
    return write_flowables(
        [*front, *story(report), *back],
        path,
        title=report.title,
        subject=f"memwall audit run {report.run_id}",
    )
