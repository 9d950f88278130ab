"""Leave-one-source-out on a hand-made runs table whose error can be worked by hand.

Two sources, five batch-1 decode runs each on one H100 (``tpot_s``, memory-bound: at batch 1
the compute time is far below the memory time at any efficiency the fit allows):

- source A (``a.example/page``, dense: llama-3.1-8b and llama-2-7b at several contexts): each
  step measured at M / 0.6, M being the run's memory time at efficiency 1;
- source B (``b.example/page``, MoE: qwen3-30b-a3b and gpt-oss-20b): each at M / 0.5.

Runs 0, 2 and 4 of each source are ``fit`` rows, 1 and 3 ``holdout``; leave-one-source-out
fits on the other source's fit rows. No step overhead and one device (no communication), so
a fit on one source alone matches it exactly with that source's efficiency and no overhead
(zero residual; runs of different M / layers pin both). Leaving A out, B's fit (0.5) predicts
A's runs at M / 0.5:
error 0.6 / 0.5 − 1 = +20 %; leaving B out, A's fit (0.6) predicts B's at M / 0.6: error
0.5 / 0.6 − 1 = −16.67 %. So:

- dense (A, 5 runs): MAPE 20 %, bias +20 %; MoE (B, 5 runs): MAPE 16.67 %, bias −16.67 %;
- overall (10 runs): MAPE (5·0.2 + 5·0.16667)/10 = 18.33 %, bias (5·0.2 − 5·0.16667)/10
  = +1.67 %;
- class spreads (RMS log error): dense |ln 1.2| = 0.18232, MoE |ln(5/6)| = 0.18232, all
  0.18232.

The ordinary fit, on all ten rows, sits between the two and errs on every row; the
fit/holdout split puts rows of both sources on both sides and hides the disagreement.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.published_runs import COLUMNS, source_page, validate_published_runs
from tasks.analysis.supply.backtest import Backtest, backtest
from tasks.analysis.supply.efficiency import NO_OVERHEAD, Efficiency
from tasks.analysis.supply.predict import predict
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate

H100 = "nvidia-h100-sxm"
SOURCES = {
    "A": ("https://a.example/page?tab=2#results", 0.6, [
        ("llama-3.1-8b", 128), ("llama-3.1-8b", 2048), ("llama-3.1-8b", 8192),
        ("llama-2-7b", 512), ("llama-2-7b", 4000),
    ]),
    "B": ("https://b.example/page/", 0.5, [
        ("qwen3-30b-a3b", 128), ("qwen3-30b-a3b", 4096), ("qwen3-30b-a3b", 16384),
        ("gpt-oss-20b", 256), ("gpt-oss-20b", 8192),
    ]),
}  # fmt: skip


def _measured(model: str, prompt: int, efficiency: float) -> float:
    """The step time at ``efficiency`` of bandwidth, no overhead (context prompt + 1: one of
    two output tokens generated, as the backtest reads a decode run)."""
    arch = preset(model)
    est = estimate(arch, phase="decode", batch=1, context=prompt + 1)
    row = {
        str(k): v
        for k, v in builtin_catalog().set_index("accelerator_id", drop=False).loc[H100].items()
    }
    step = predict(
        arch, est, row, Efficiency(efficiency, "test", 0.0), Efficiency(0.7, "test", 0.0), 1,
        NO_OVERHEAD,
    )  # fmt: skip
    assert step.bound == "memory"
    return step.step_time_s


def _sheet() -> pd.DataFrame:
    rows = []
    for name, (url, efficiency, runs) in SOURCES.items():
        for i, (model, prompt) in enumerate(runs):
            rows.append(
                {
                    "run_id": f"{name}{i}", "model": model, "model_preset": model,
                    "hardware": H100, "devices": "1", "layout": "tp=1", "phase": "decode",
                    "batch": "1", "input_tokens": str(prompt), "output_tokens": "2",
                    "weight_precision": "bf16", "kv_precision": "bf16",
                    "compute_precision": "bf16", "engine": "hand-made", "engine_version": "0",
                    "metric": "tpot_s",
                    "measured_value": repr(_measured(model, prompt, efficiency)),
                    "source_url": url, "source_location": "table", "note": "",
                    "split": "holdout" if i % 2 else "fit",
                }
            )  # fmt: skip
    return pd.DataFrame(rows, columns=list(COLUMNS), dtype=str)


@pytest.fixture(scope="module")
def result() -> Backtest:
    return backtest(validate_published_runs(_sheet(), "hand-made"), builtin_catalog())


def test_each_sources_rows_are_predicted_by_the_other_sources_fit(result: Backtest) -> None:
    errors = result.runs.set_index("run_id")["loso_error"]
    assert errors[[f"A{i}" for i in range(5)]].to_numpy() == pytest.approx([0.2] * 5, abs=2e-3)
    assert errors[[f"B{i}" for i in range(5)]].to_numpy() == pytest.approx(
        [0.5 / 0.6 - 1] * 5, abs=2e-3
    )
    assert result.sources == 2


def test_summary_overall_and_per_class(result: Backtest) -> None:
    overall = result.loso_summary()
    assert overall.runs == 10
    assert overall.mape == pytest.approx(0.18333, abs=2e-3)
    assert overall.bias == pytest.approx(0.01667, abs=2e-3)
    by_class = {s.split: s for s in result.loso_by("class")}
    assert list(by_class) == ["dense", "MoE"]
    assert by_class["dense"].mape == pytest.approx(0.2, abs=2e-3)
    assert by_class["dense"].bias == pytest.approx(0.2, abs=2e-3)
    assert by_class["MoE"].mape == pytest.approx(1 / 6, abs=2e-3)
    assert by_class["MoE"].bias == pytest.approx(-1 / 6, abs=2e-3)
    assert [s.split for s in result.loso_by("vendor")] == ["NVIDIA"]
    assert [(s.split, s.runs) for s in result.loso_by("phase")] == [("decode", 10)]


def test_class_spreads_are_the_rms_log_errors(result: Backtest) -> None:
    spread = result.fitted.class_spread
    assert set(spread) == {"all", "dense", "MoE"}
    for name in spread:
        assert spread[name] == pytest.approx(math.log(1.2), abs=2e-3)


def test_each_class_is_one_source_so_its_error_is_all_offset(result: Backtest) -> None:
    """Every row of a source has the same leave-one-source-out error, and each class is one
    source: the offset is the whole of it (share 1), nothing is left within a source, and no
    two sources ran one model, so no pair contradicts another."""
    figures = {d.architecture_class: d for d in result.disagreement}
    assert list(figures) == ["dense", "MoE"]
    for d in figures.values():
        assert (d.offsets.runs, d.offsets.sources) == (5, 1)
        assert d.offsets.offset_share == pytest.approx(1.0)
        assert d.offsets.within_source_mape == pytest.approx(0.0, abs=1e-3)
        assert d.contradictions == ()
    assert figures["dense"].offsets.loso_mape == pytest.approx(0.2, abs=2e-3)


def test_the_split_hides_what_leaving_a_source_out_shows(result: Backtest) -> None:
    # Fitted on rows of both sources, the holdout rows are predicted by a compromise whose
    # error is below leave-one-source-out's on every row.
    holdout = result.summary("holdout")
    assert holdout.mape < result.loso_summary().mape


def test_a_source_is_the_page_without_commit_query_or_fragment() -> None:
    one = "https://github.com/o/r/blob/0123abc/docs/perf.md#h200"
    other = "https://github.com/o/r/blob/main/docs/perf.md"
    assert source_page(one) == source_page(other) == "github.com/o/r/docs/perf.md"
    raw = "https://raw.githubusercontent.com/o/r/0123abc/docs/perf.md"
    assert source_page(raw) == "github.com/o/r/docs/perf.md"
    assert source_page("https://www.Example.org/blog/post/?x=1") == "example.org/blog/post"
    assert source_page("https://example.org/blog/post") != source_page("https://example.org/blog")


def test_a_backtest_without_sources_left_out_fits_the_same_defaults(result: Backtest) -> None:
    """``by_source=False`` (what a single prediction asks for) skips the per-source fits: the
    same fitted defaults, no class spreads, no leave-one-source-out errors."""
    again = backtest(
        validate_published_runs(_sheet(), "hand-made"), builtin_catalog(), by_source=False
    )
    assert again.fitted.efficiencies == result.fitted.efficiencies
    assert again.fitted.class_spread == {}
    assert again.runs["loso_error"].isna().all()
    assert again.disagreement == []
