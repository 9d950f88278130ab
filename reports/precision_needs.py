"""The table of the precision page that answers "which precision would each workload need on
the incoming hardware": per top workload near the wall, per model its pool holds or receives
in the horizon, the smallest precision mitigation that keeps it from starving there
(:mod:`tasks.analysis.ranking.precision_needs`)."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib.units import cm
from reportlab.platypus import Flowable, Paragraph, Spacer, Table

from hardware_profiles.prefixes import PREFIXES, si
from reports.content import AuditReport
from reports.styles import stylesheet, table_style


def _paragraph(value: str, style: str) -> Paragraph:
    """Text (workload and model names come from user files) escaped: a Paragraph reads markup."""
    return Paragraph(escape(value), stylesheet()[style])


def _needs(r: dict[str, Any]) -> str:
    if r["need"] == "none":
        return f"none suffices ({r['unavailable']})" if r["unavailable"] else "none suffices"
    return f"{r['label']}, then compute-short" if r["compute_short"] else str(r["label"])


def needs_rows(report: AuditReport) -> list[list[str]]:
    """The table's cells, in ranking order: #, workload, model (with its status where it is
    not shipping), when the pool holds it, starvation as is, what it needs, bytes left."""
    f = report.findings
    needs = f.precision_needs
    if needs.empty:
        return []
    ranking = f.ranking.set_index("workload_id")
    status = (
        {}
        if f.hardware.empty
        else dict(zip(f.hardware["accelerator_id"], f.hardware["status"], strict=True))
    )
    start = f.months[0]
    rows = []
    records: list[dict[str, Any]] = needs.to_dict("records")  # type: ignore[assignment]
    for r in records:
        model = str(r["accelerator_id"])
        firm = status.get(model)
        rows.append(
            [
                str(ranking.loc[r["workload_id"], "rank"]),
                str(ranking.loc[r["workload_id"], "name"]),
                model if firm in (None, "shipping") else f"{model} ({firm})",
                "now" if r["first_month"] == start else f"{r['first_month']:%Y-%m}",
                "holds" if r["starve_month"] is None else f"starves {r['starve_month']:%Y-%m}",
                _needs(r),
                si(float(r["bytes_per_unit"]), "B", prefixes=PREFIXES[:4]),
            ]
        )
    return rows


def needs_section(report: AuditReport) -> list[Flowable]:
    """The heading, how to read it, and the table; nothing when no top workload is near the
    wall."""
    rows = needs_rows(report)
    if not rows:
        return []
    s = stylesheet()
    header = ["#", "workload", "model", "in pool", "as is", "needs", "bytes/unit"]
    data = [[_paragraph(c, "cell") for c in row] for row in [header, *rows]]
    widths = [0.7 * cm, 3.3 * cm, 3.6 * cm, 1.5 * cm, 2.5 * cm, 4.4 * cm, 2.0 * cm]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(table_style())
    return [
        Spacer(1, 8),
        Paragraph("Precision each workload needs, by model", s["h2"]),
        _paragraph(
            (
                "For each top workload that starves or runs memory-bound within 25 % of "
                "starving, and each model its pool holds now or receives in the horizon: the "
                "projection as if the pool's devices, each month, were all that model, at "
                "today's precisions (as is) and under each precision mitigation of the "
                "mitigations table. needs = the smallest change that keeps it from starving "
                "through the horizon (the one that keeps the most bytes per unit): as is, int8 "
                "or int4 weights (weight-only), an fp8 KV cache, fp8 compute or fp4 compute "
                "(NVFP4, fp8 KV) where the model has the units; none suffices where none does. "
                "bytes/unit = what that change leaves. Same sources and approximations as the "
                "mitigations; figures of announced or preliminary models are as firm as their "
                "status."
            ),
            "small",
        ),
        Spacer(1, 4),
        table,
    ]
