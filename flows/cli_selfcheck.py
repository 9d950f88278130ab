"""``memwall history --accuracy``: memwall's own error on this fleet, from the history's
recorded predictions (tasks.analysis.supply.selfcheck), as a table or JSON."""

from __future__ import annotations

import math
import sys
from typing import Any

from flows.cli_common import print_json, stderr, warn_set_aside
from flows.timings import STARTED, Stopwatch
from tasks.analysis.ranking.ranking import records
from tasks.analysis.supply.selfcheck import DEFAULT_LAST_RUNS, Accuracy, accuracy
from tasks.history import read_predictions


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def accuracy_json(checked: Accuracy) -> dict[str, Any]:
    """The self-check as one object: the headline, the overall error, per workload, and every
    check (a prediction and the measurement that checked it)."""
    return {
        "headline": checked.headline(),
        "runs": checked.runs,
        "overall_mean_abs_error": checked.overall_mean_abs_error,
        "flagged": checked.flagged,
        "workloads": [
            {
                "workload_id": r.workload_id,
                "accelerators": r.accelerators,
                "checks": int(r.checks),
                "mean_abs_error": float(r.mean_abs_error),
                "bias": float(r.bias),
                "last_error": float(r.last_error),
                "flagged": bool(r.flagged),
            }
            for r in records(checked.workloads)
        ],
        "checks": [
            {
                "workload_id": r.workload_id,
                "accelerator_id": r.accelerator_id,
                "run_id": r.run_id,
                "recorded_at": r.recorded_at.isoformat(),
                "checked_by": r.checked_by,
                "window": r.window,
                "predicted_step_s": float(r.predicted_step_s),
                "measured_step_s": float(r.measured_step_s),
                "error": float(r.error),
                "step_p10_s": _number(r.step_p10_s),
                "step_p90_s": _number(r.step_p90_s),
                "in_band": bool(r.in_band),
                "batch_change": _number(r.batch_change),
                "efficiency_source": r.efficiency_source,
            }
            for r in records(checked.checks)
        ],
    }


def print_accuracy(location: str, as_json: bool, last_runs: int = DEFAULT_LAST_RUNS) -> None:
    """Read the predictions (old histories have none: said, not an error) and print the check."""
    watch = Stopwatch(STARTED)
    checked = accuracy(read_predictions(location), last_runs)
    warn_set_aside(location)
    watch.lap("history")
    if as_json:
        print_json(accuracy_json(checked), timings=watch.timings())
        return
    print(checked.headline())
    if checked.workloads.empty:
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("workload", "accelerators", "checks", "mean |error|", "bias", "last", "band")
    for r in records(checked.workloads):
        table.add_row(
            str(r.workload_id),
            str(r.accelerators),
            str(r.checks),
            f"{100 * r.mean_abs_error:.1f} %",
            f"{100 * r.bias:+.1f} %",
            f"{100 * r.last_error:+.1f} %",
            "[bold red]past its P10-P90 band[/]" if r.flagged else "within",
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    if checked.flagged:
        stderr.print(f"flagged: {', '.join(checked.flagged)}", markup=False)
