"""The training backtest: metrics turned into step times, the fit, and the held-out errors."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.published_training_runs import read_published_training_runs
from hardware_profiles.scale_out import read_scale_out
from tasks.analysis.supply.efficiency import Efficiency
from tasks.analysis.training.backtest import (
    UNSTATED,
    Case,
    backtest,
    fit_efficiency,
    fit_table,
    measured_step_s,
    predict,
    prepare,
    stack_fit_table,
)
from tasks.analysis.training.layout import Layout, TrainingRun


def test_each_metric_becomes_seconds_per_step() -> None:
    """64 devices, 64 sequences of 8192 tokens: 524,288 tokens per step. 2,904 tokens/s per
    device is 524,288 / (2,904·64) = 2.8209 s; 185,856 tokens/s in all the same; an MFU of
    0.5 with 1e18 model FLOPs at 312 TFLOP/s is 1e18 / (0.5·64·312e12) = 100.16 s."""
    run = TrainingRun(Layout(dp=64), global_batch=64, sequence=8192)
    assert measured_step_s("tokens_per_s_per_device", 2904, run, 0, 1) == pytest.approx(
        524_288 / (2904 * 64)
    )
    assert measured_step_s("tokens_per_s", 2904 * 64, run, 0, 1) == pytest.approx(2.82093, 1e-5)
    assert measured_step_s("step_time_s", 3.5, run, 0, 1) == 3.5
    assert measured_step_s("mfu", 0.5, run, 1e18, 312e12) == pytest.approx(100.160256, 1e-6)


def test_the_fit_recovers_the_efficiency_runs_were_made_at() -> None:
    """Runs whose 'measured' times are the model's own at e = 0.45 fit back to 0.45 with no
    spread: the fit inverts the prediction, it does not bend it."""
    cases, _ = prepare(read_published_training_runs(), builtin_catalog(), read_scale_out())
    made = Efficiency(0.45, "made", 0.0)
    synthetic = [replace(c, measured_step_s=predict(c, made).step_time_s) for c in cases[:5]]
    fitted = fit_efficiency(synthetic, "test")
    assert fitted.value == pytest.approx(0.45, rel=1e-6)
    assert fitted.spread == pytest.approx(0.0, abs=1e-6)
    assert fitted.source == "fitted on 5 published training run(s), test"


def test_the_builtin_runs_are_all_predicted_and_summarised_by_split() -> None:
    runs = read_published_training_runs()
    result = backtest(runs, builtin_catalog(), read_scale_out())
    assert result.skipped == []
    assert len(result.runs) == len(runs) >= 12
    fit, holdout, loso = (result.summary(s) for s in ("fit", "holdout", "loso"))
    assert fit.runs + holdout.runs == loso.runs == len(runs)
    chosen = result.runs["split"] == "holdout"
    assert holdout.mape == pytest.approx(result.runs.loc[chosen, "error"].abs().mean())
    assert holdout.bias == pytest.approx(result.runs.loc[chosen, "error"].mean())
    assert holdout.mfu_runs == int(result.runs.loc[chosen, "published_mfu"].notna().sum())


def test_a_run_memwall_cannot_lay_out_is_skipped_with_the_reason() -> None:
    runs = read_published_training_runs().head(2).copy()
    runs.loc[0, "layout"] = "dp=63"
    runs.loc[1, "hardware"] = "nvidia-nothing"
    result = backtest(pd.DataFrame(runs), builtin_catalog(), read_scale_out())
    assert result.runs.empty
    assert "uses dp·tp·pp·cp = 63 devices, not 64" in result.skipped[0]
    assert "'nvidia-nothing' is not in the catalog" in result.skipped[1]


def test_a_fit_on_too_few_runs_takes_the_spread_of_the_fit_over_all() -> None:
    """The built-in fit rows hold one Llama 3 run (Meta's stack on H100, bf16): alone it has
    no spread to show, so it carries the spread of the fit over every stack-named fit run,
    and says so."""
    cases, _ = prepare(read_published_training_runs(), builtin_catalog(), read_scale_out())
    chosen = [c for c in cases if c.split == "fit"]
    one = stack_fit_table(chosen)[("nvidia-h100-sxm", "meta-llama3", "bf16")]
    overall = fit_efficiency([c for c in chosen if c.stack != UNSTATED], "all")
    assert overall.spread > 0
    assert one.spread == pytest.approx(overall.spread)
    assert one.source.endswith("(spread of the fit over all runs)")


def test_each_run_takes_its_stacks_fit_and_says_when_it_falls_back() -> None:
    """Llama 3's 16,384-GPU row is priced by the fit on Meta's own stack (its 8,192-GPU row);
    left out of the fit with its source, no Meta-stack run is left and it falls back to the
    H100 bf16 fit over the other sources; a source memwall cannot name a stack for takes the
    accelerator's fit from the start."""
    runs = read_published_training_runs()
    result = backtest(runs, builtin_catalog(), read_scale_out())
    row = result.runs.set_index("run_id").loc["llama3-405b-16k-gpus"]
    assert row["stack"] == "meta-llama3"
    assert row["efficiency_level"] == "accelerator+stack+precision"
    stack_fit = result.stack_fitted[("nvidia-h100-sxm", "meta-llama3", "bf16")]
    assert row["efficiency"] == stack_fit.value
    assert row["loso_efficiency_level"] == "accelerator+precision"
    cases, _ = prepare(runs, builtin_catalog(), read_scale_out())
    others = fit_table([c for c in cases if c.source_id != "llama3-paper"])
    assert row["loso_efficiency"] == others[("nvidia-h100-sxm", "bf16")].value

    renamed = runs.copy()
    renamed.loc[renamed["run_id"] == "llama3-405b-16k-gpus", "source_id"] = "my-cluster"
    mine = backtest(renamed, builtin_catalog(), read_scale_out()).runs.set_index("run_id")
    assert mine.loc["llama3-405b-16k-gpus", "stack"] == UNSTATED
    assert mine.loc["llama3-405b-16k-gpus", "efficiency_level"] == "accelerator+precision"


def test_a_precision_fewer_stacks_ran_is_priced_by_its_ratio_within_a_stack() -> None:
    """Runs made at e = 0.6 on stack A (bf16), 0.6 on stack B (bf16) and 0.3 on stack B
    (fp8): fitted directly, fp8 would be B's 0.3 alone, half of bf16's 0.6 (B's own level,
    not what fp8 does). Stack B ran both: its fp8 / bf16 ratio is 0.3 / 0.6 = 0.5, so fp8 is
    bf16's fit (0.6, over both stacks) x 0.5 = 0.3 here; made with B's bf16 at 0.4 instead,
    the ratio is 0.3 / 0.4 = 0.75 and fp8 is bf16's fit over the runs at 0.6 and 0.4, x 0.75."""
    cases, _ = prepare(read_published_training_runs(), builtin_catalog(), read_scale_out())
    base = next(c for c in cases if c.hardware == "nvidia-h100-sxm" and c.precision == "bf16")

    def made(stack: str, precision: str, value: float) -> Case:
        case = replace(base, stack=stack, precision=precision, run_id=f"{stack}-{precision}")
        if precision == "fp8":
            case = replace(case, run=replace(case.run, compute="fp8"))
        step = predict(case, Efficiency(value, "made", 0.0)).step_time_s
        return replace(case, measured_step_s=step)

    same = fit_table([made("a", "bf16", 0.6), made("b", "bf16", 0.6), made("b", "fp8", 0.3)])
    assert same[("nvidia-h100-sxm", "fp8")].value == pytest.approx(0.3, rel=1e-4)
    fitted = fit_table([made("a", "bf16", 0.6), made("b", "bf16", 0.4), made("b", "fp8", 0.3)])
    bf16 = fitted[("nvidia-h100-sxm", "bf16")]
    fp8 = fitted[("nvidia-h100-sxm", "fp8")]
    assert fp8.value == pytest.approx(bf16.value * 0.75, rel=1e-4)
    assert "the fp8 / bf16 ratio within b" in fp8.source
