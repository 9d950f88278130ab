"""Writing the audit PDF: page furniture, metadata, and an atomic rename into place."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import cm
from reportlab.platypus import Flowable, SimpleDocTemplate

from hardware_profiles.parquet import atomic_path
from reports.story import AuditReport, story
from reports.styles import FONT, MUTED

AUTHOR = "memwall"


def _footer(canvas: Any, doc: Any) -> None:
    canvas.saveState()
    canvas.setFont(FONT, 7.5)
    canvas.setFillColor(MUTED)
    canvas.drawString(doc.leftMargin, 1.0 * cm, doc.title)
    canvas.drawRightString(A4[0] - doc.rightMargin, 1.0 * cm, f"page {doc.page}")
    canvas.restoreState()


def write_pdf(report: AuditReport, path: str | Path, front: Sequence[Flowable] = ()) -> Path:
    """Render ``report`` to ``path``, after ``front`` (a fleet's hosts and trend) if given;
    a failure leaves no file (and no temporary file)."""
    path = Path(path)
    flowables = [*front, *story(report)]
    with atomic_path(path) as tmp:
        doc = SimpleDocTemplate(
            str(tmp),
            pagesize=A4,
            leftMargin=1.5 * cm,
            rightMargin=1.5 * cm,
            topMargin=1.5 * cm,
            bottomMargin=1.8 * cm,
            title=report.title,
            author=AUTHOR,
            subject=f"memwall audit run {report.run_id}",
            creator="memwall",
        )
        doc.build(flowables, onFirstPage=_footer, onLaterPages=_footer)
    return path
