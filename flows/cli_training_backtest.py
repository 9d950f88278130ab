"""``memwall backtest --phase training``: every published training run predicted, its error
and MFU, and MAPE and bias on the fit rows, the held-out rows and leaving each source out."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from flows.cli_common import print_json
from flows.cli_training import seconds_text, stdout
from flows.timings import STARTED, Stopwatch

if TYPE_CHECKING:
    from tasks.analysis.training.backtest import TrainingBacktest


def _percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{round(100 * value, 1) + 0.0:+.1f} %"


def backtest_training(
    runs: Path | None, catalog: Path | None, scale_out: Path | None, as_json: bool
) -> None:
    """``memwall backtest --phase training``: every published training run predicted, the
    errors, and MAPE and bias on the fit rows, the held-out rows and leaving each source out."""
    from hardware_profiles.catalog import load_catalog
    from hardware_profiles.published_training_runs import read_published_training_runs
    from hardware_profiles.scale_out import read_scale_out
    from tasks.analysis.training.backtest import backtest

    watch = Stopwatch(STARTED)
    watch.lap("start-up")
    result = backtest(
        read_published_training_runs(runs), load_catalog(catalog), read_scale_out(scale_out)
    )
    watch.lap("backtest")
    if as_json:
        print_json(training_backtest_json(result), timings=watch.timings())
        return
    print_training_backtest(result, stdout)


def training_backtest_json(result: TrainingBacktest) -> dict[str, Any]:
    return {
        "runs": result.runs.to_dict("records"),
        "summary": {s: result.summary(s).as_json() for s in ("fit", "holdout", "loso")},
        "loso_offsets": None if (offsets := result.offsets()) is None else offsets.as_json(),
        "fitted": [
            {
                "accelerator": k[0],
                "precision": k[1],
                "efficiency": e.value,
                "spread": e.spread,
                "source": e.source,
            }
            for k, e in result.fitted.items()
        ],
        "stack_fitted": [
            {
                "accelerator": k[0],
                "stack": k[1],
                "precision": k[2],
                "efficiency": e.value,
                "spread": e.spread,
                "source": e.source,
            }
            for k, e in result.stack_fitted.items()
        ],
        "skipped": result.skipped,
    }


def print_training_backtest(result: TrainingBacktest, out: Console) -> None:
    """The training backtest as ``memwall backtest --phase training`` and
    ``benchmarks/training_backtest.py`` print it."""

    def line(text: str) -> None:
        out.print(text, markup=False, soft_wrap=True)

    line("run / split / model on devices x hardware, layout: measured, predicted step, error; MFU")
    for r in result.runs.to_dict("records"):
        mfu = f"MFU predicted {100 * r['predicted_mfu']:.1f} %"
        if r["published_mfu"] == r["published_mfu"]:
            mfu += f", published {100 * r['published_mfu']:.1f} % ({r['mfu_points']:+.1f} points)"
        line(
            f"{r['run_id']:<36} {r['split']:<7} {r['model_preset']} on {r['devices']} x "
            f"{r['hardware']} {r['layout']} {r['precision']} {r['recompute']}: measured "
            f"{seconds_text(r['measured_step_s'])}, "
            f"predicted {seconds_text(r['predicted_step_s'])}, "
            f"error {_percent(r['error'])} (leaving its source out {_percent(r['loso_error'])}); "
            f"{mfu}; bound {r['wall']}"
        )
    for (hardware, stack, precision), e in result.stack_fitted.items():
        line(
            f"GEMM efficiency {hardware} on {stack} {precision}: {e.value:.3f} "
            f"(±{100 * e.spread:.0f} %)"
        )
    for (hardware, precision), e in result.fitted.items():
        line(f"GEMM efficiency {hardware} {precision}: {e.value:.3f} (±{100 * e.spread:.0f} %)")
    line("error = predicted / measured step time - 1 (negative: predicted too fast)")
    for split, name in (("fit", "fit"), ("holdout", "holdout"), ("loso", "leave one source out")):
        s = result.summary(split)
        mfu = (
            f"; MFU within {s.mfu_max_points:.1f} points on {s.mfu_runs} run(s) stating one"
            if s.mfu_runs
            else ""
        )
        line(f"{name}: {s.runs} runs, MAPE {100 * s.mape:.1f} %, bias {_percent(s.bias)}{mfu}")
    offsets = result.offsets()
    if offsets is not None:
        line(
            f"  leaving each source out, with each source's own mean offset taken out (its "
            f"stack's level): {100 * offsets.within_source_mape:.1f} % (offsets: "
            f"{100 * offsets.offset_share:.0f} % of the squared log error, "
            f"{offsets.sources} sources)"
        )
    for note in result.skipped:
        line(f"skipped {note}")
