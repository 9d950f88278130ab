"""The PDF's self-check: memwall's own error on this fleet, from its recorded predictions.

Each audit with serving telemetry predicts every served workload's decode step at the batch
and context production served; the next audits measure it (tasks.analysis.supply.selfcheck).
One row per workload over the last runs: the checks, the mean absolute error, the bias, the
latest error, and whether the latest measurement fell outside the P10-P90 band the projection
gave it (flagged); then each flagged check in one line.
"""

from __future__ import annotations

from reportlab.lib.units import cm
from reportlab.platypus import Flowable, Paragraph, Spacer

from reports.cells import data_table, text
from reports.styles import stylesheet
from tasks.analysis.ranking.ranking import records
from tasks.analysis.supply.selfcheck import Accuracy

HEADER = ["workload", "accelerators", "checks", "mean |error|", "bias", "last error", "band"]
WIDTHS_CM = (3.6, 3.4, 1.4, 2.2, 1.8, 2.0, 2.8)


def selfcheck_section(checked: Accuracy) -> list[Flowable]:
    """The section's heading, its one-line verdict and, once anything was checked, the table."""
    s = stylesheet()
    flow: list[Flowable] = [
        Paragraph("Self-check: memwall's error on this fleet", s["h1"]),
        Paragraph(text(checked.headline()), s["headline" if checked.flagged else "body"]),
        Paragraph(
            text(
                "Each audit with serving telemetry records its predicted decode step per served "
                "workload at the batch and context production served; a later audit's measured "
                "step checks it (error = measured / predicted - 1; positive: memwall over-stated "
                "supply). Band: the P10-P90 the projection gave the workload's supply."
            ),
            s["small"],
        ),
    ]
    if checked.workloads.empty:
        return flow
    rows = [
        [
            r.workload_id,
            r.accelerators,
            str(r.checks),
            f"{100 * r.mean_abs_error:.1f} %",
            f"{100 * r.bias:+.1f} %",
            f"{100 * r.last_error:+.1f} %",
            "past its band" if r.flagged else "within",
        ]
        for r in records(checked.workloads)
    ]
    flow += [Spacer(1, 4), data_table(HEADER, rows, [w * cm for w in WIDTHS_CM]), Spacer(1, 4)]
    latest = checked.checks[~checked.checks["in_band"].astype(bool)]
    for r in records(latest):
        flow.append(
            Paragraph(
                text(
                    f"{r.workload_id} on {r.accelerator_id}: run {r.run_id} predicted "
                    f"{1e3 * r.predicted_step_s:.2f} ms (P10-P90 {1e3 * r.step_p10_s:.2f}-"
                    f"{1e3 * r.step_p90_s:.2f} ms, {r.efficiency_source}); run {r.checked_by} "
                    f"measured {1e3 * r.measured_step_s:.2f} ms ({r.window}): "
                    f"{100 * r.error:+.1f} %"
                ),
                s["small"],
            )
        )
    return flow
