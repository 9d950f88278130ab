"""Published runs: a malformed row is one error naming file, row and column; the fit recovers
the efficiencies and step overheads the fixture's runs were generated at; the holdout error is
then about zero, while the STREAM defaults predict every decode step too fast."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.errors import ProfileError
from hardware_profiles.published_runs import read_published_runs
from tasks.analysis.supply.backtest import STREAM_BANDWIDTH, backtest
from tasks.analysis.supply.predict import predict
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate
from tests.analysis.supply.published_fixture import (
    DECODE_BW,
    DECODE_OVERHEAD_S,
    PREFILL_FLOPS,
    PREFILL_OVERHEAD_S,
    fixture_rows,
    write_fixture,
)


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> object:
    path = write_fixture(tmp_path_factory.mktemp("runs") / "runs.csv")
    return backtest(read_published_runs(path), builtin_catalog())


def test_the_fit_recovers_the_efficiencies_the_runs_were_measured_at(result) -> None:  # type: ignore[no-untyped-def]
    decode = result.fitted.lookup("decode", "NVIDIA")
    prefill = result.fitted.lookup("prefill", "NVIDIA")
    assert decode.value == pytest.approx(DECODE_BW, rel=0.01)
    assert prefill.value == pytest.approx(PREFILL_FLOPS, rel=0.01)
    assert decode.source == "fitted on 3 published runs (decode, NVIDIA)"
    assert decode.spread < 0.01
    overheads = result.fitted.overheads
    assert overheads["decode"].seconds == pytest.approx(DECODE_OVERHEAD_S, rel=0.02)
    assert overheads["prefill"].seconds == pytest.approx(PREFILL_OVERHEAD_S, rel=0.02)


def test_decode_compute_efficiency_is_not_claimed_when_no_run_depends_on_it(result) -> None:  # type: ignore[no-untyped-def]
    # Every fixture decode run is memory-bound whatever its compute efficiency: nothing fits it.
    assert result.fitted.lookup("decode", "NVIDIA", "flops") is None


def test_holdout_error_is_near_zero_and_stream_defaults_run_too_fast(result) -> None:  # type: ignore[no-untyped-def]
    holdout = result.summary("holdout")
    assert holdout.runs == 3
    assert holdout.mape < 0.01
    assert abs(holdout.bias) < 0.01
    # STREAM's 0.85 against the 0.6 the decode runs reach, and no overhead: every decode step
    # at least 0.6/0.85 - 1 = -29 % too fast.
    decode = result.runs["phase"] == "decode"
    assert (result.stream_error[decode].to_numpy() < DECODE_BW / 0.85 - 1 + 0.01).all()
    assert result.summary("fit", stream=True).bias < -0.1


def test_a_run_with_an_unknown_preset_is_skipped_with_a_note_not_a_crash(result) -> None:  # type: ignore[no-untyped-def]
    assert "u1" not in set(result.runs["run_id"])
    assert any("u1" in s and "'no-such-model' is unknown" in s for s in result.skipped)


def test_predicted_value_is_stated_in_the_runs_own_metric(result) -> None:  # type: ignore[no-untyped-def]
    d2 = result.runs.set_index("run_id").loc["d2"]
    assert d2["metric"] == "output_tokens_per_s"
    assert d2["predicted_value"] == pytest.approx(8 / d2["predicted_step_s"])
    assert d2["measured_step_s"] == pytest.approx(8 / d2["measured_value"])


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("measured_value", "fast", "must be a number > 0"),
        ("measured_value", "-3", "must be a number > 0"),
        ("batch", "0", "whole number >= 1"),
        ("phase", "training", "is not valid; valid: decode, prefill"),
        ("metric", "ttft_s", "'ttft_s' measures prefill"),
        ("split", "test", "valid: fit, holdout"),
        ("weight_precision", "fp12", "is not valid"),
        ("source_url", "example.org", "not an http(s) URL"),
        ("model_preset", "", "must not be empty"),
        ("run_id", "d1", "duplicate run_id"),
    ],
)
def test_a_malformed_row_names_file_row_and_column(
    tmp_path: Path, column: str, value: str, problem: str
) -> None:
    rows = fixture_rows()
    rows[1] = {**rows[1], column: value}
    path = write_fixture(tmp_path / "runs.csv", rows)
    with pytest.raises(ProfileError) as caught:
        read_published_runs(path)
    message = str(caught.value)
    assert message.startswith(f"{path}, row 2, column '{column}'")
    assert problem in message


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "runs.csv"
    path.write_text("run_id,model\nx,y\n", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"missing column.*model_preset"):
        read_published_runs(path)


def test_the_shipped_published_runs_validate_and_hold_both_splits_and_phases() -> None:
    from hardware_profiles.published_runs import builtin_published_runs

    runs = builtin_published_runs()
    if runs.empty:
        pytest.skip("this checkout ships no hardware_profiles/data/published_runs.csv yet")
    assert set(runs["split"]) == {"fit", "holdout"}
    assert set(runs["phase"]) == {"decode", "prefill"}
    result = backtest(runs, builtin_catalog())
    assert result.summary("holdout").runs > 0


def test_an_unstated_output_length_predicts_decode_at_the_prompt(tmp_path: Path) -> None:
    rows = fixture_rows()
    rows[0] = {**rows[0], "output_tokens": ""}  # d1: prompt 1024, 256 generated
    result = backtest(
        read_published_runs(write_fixture(tmp_path / "r.csv", rows)), builtin_catalog()
    )
    contexts = result.runs.set_index("run_id")["context"]
    assert contexts["d1"] == 1024
    assert contexts["d2"] == 1024 + 256 // 2


def test_a_run_without_its_batch_is_skipped_and_an_unstated_kv_cache_allowed(
    tmp_path: Path,
) -> None:
    rows = fixture_rows()
    rows[1] = {**rows[1], "batch": ""}
    rows[2] = {**rows[2], "kv_precision": ""}
    result = backtest(
        read_published_runs(write_fixture(tmp_path / "r.csv", rows)), builtin_catalog()
    )
    assert "d2" not in set(result.runs["run_id"]) and "d3" in set(result.runs["run_id"])
    assert any(
        s.startswith("row 2 (d2): the source does not state its batch") for s in result.skipped
    )


def test_a_static_batch_run_pays_its_batchs_prefill_spread_over_its_output(result) -> None:  # type: ignore[no-untyped-def]
    runs = result.runs.set_index("run_id")
    # d2: output tokens per second over the whole run (batch 8, 1024-token prompts, 256 out):
    # the prefill of 8 x 1024 tokens at the fitted prefill figures, over 256 steps.
    first = estimate(preset("llama-3.1-8b"), phase="prefill", batch=8, context=1024)
    catalog = builtin_catalog().set_index("accelerator_id", drop=False)
    h100 = {str(k): v for k, v in catalog.loc["nvidia-h100-sxm"].items()}
    prefill = predict(
        preset("llama-3.1-8b"), first, h100, STREAM_BANDWIDTH,
        result.fitted.lookup("prefill", "NVIDIA"), 1, result.fitted.overhead("prefill"),
    )  # fmt: skip
    assert runs.loc["d2", "prefill_share_s"] == pytest.approx(prefill.step_time_s / 256)
    # d1 is a per-token latency: no prefill in it.
    assert runs.loc["d1", "prefill_share_s"] == 0


def _one_run(tmp_path: Path, **changes: str) -> pd.DataFrame:
    row = {
        **fixture_rows()[1],
        "run_id": "h200",
        "hardware": "nvidia-h200-sxm",
        "model_preset": "llama-2-13b",
        "weight_precision": "fp8",
        "compute_precision": "fp8",
        "kv_precision": "",
        "input_tokens": "128",
        "output_tokens": "2048",
        **changes,
    }
    return read_published_runs(write_fixture(tmp_path / "one.csv", [row]))


def test_an_unstated_kv_precision_is_the_weights_where_only_that_fits(tmp_path: Path) -> None:
    # Llama-2-13B keeps 40 layers x 40 heads x 128 x 2 (K and V) = 409,600 values per token:
    # batch 128 at 2,176 tokens is 114 GB at 1 byte, 228 GB at 2; an H200 holds 143,771 MiB
    # (150.75 GB), the total it reports.
    result = backtest(_one_run(tmp_path, batch="128"), builtin_catalog())
    notes = result.runs.iloc[0]["notes"]
    assert any("KV precision not stated: fp8" in n and "batch 128" in n for n in notes)
    # At batch 8 the model's bf16 cache fits: nothing is deduced.
    small = backtest(_one_run(tmp_path, batch="8"), builtin_catalog())
    assert not any("KV precision" in n for n in small.runs.iloc[0]["notes"])


def test_leave_one_out_predicts_each_fit_row_from_the_others(tmp_path: Path) -> None:
    runs = read_published_runs(write_fixture(tmp_path / "runs.csv"))
    errors = backtest(runs, builtin_catalog()).leave_one_out
    assert set(errors.index) == {"d1", "d2", "d3", "p1", "p2"}
    # The fixture is generated by the model itself. Left out, p2 (the other prefill run) has
    # its prefill efficiency and per-layer overhead pinned by p1 alone (one run, two
    # parameters, the static batch's prefill share weighing little): within 3 %.
    assert errors.drop("p2").abs().max() < 1e-4
    assert abs(errors["p2"]) < 0.03


def test_without_a_prefill_run_a_prefill_pays_decodes_per_layer_overhead(tmp_path: Path) -> None:
    # Per-token latencies only: no prefill, no static batch, so nothing fits a prefill overhead
    # of its own; a prefill's forward pass launches decode's kernels per layer, so it pays
    # decode's fitted per-layer figure, which says where it came from.
    rows = [r for r in fixture_rows() if r["metric"] == "tpot_s"]
    result = backtest(
        read_published_runs(write_fixture(tmp_path / "r.csv", rows)), builtin_catalog()
    )
    overheads = result.fitted.overheads
    assert set(overheads) == {"decode", "prefill"}
    assert overheads["prefill"].seconds == overheads["decode"].seconds > 0
    assert overheads["prefill"].source.startswith("decode's per-layer overhead")


def test_without_a_prefill_run_no_prefill_overhead_is_fitted(tmp_path: Path) -> None:
    """Decode runs only, two of them static-batching (d2 8 x 1024 -> 256, d5 16 x 1024 ->
    1024, whose throughput includes one prefill each): a prefill overhead of its own would be
    spread over 256 and 1024 generated tokens, too weakly pinned to fit, so their prefills
    pay decode's per-layer overhead (the fixture's is 5 times that); the decode efficiency and
    overhead absorb the rest of what the runs' prefills cost, so they land near the
    fixture's, not on them."""
    rows = [r for r in fixture_rows() if r["phase"] == "decode"]
    result = backtest(
        read_published_runs(write_fixture(tmp_path / "r.csv", rows)), builtin_catalog()
    )
    assert set(result.fitted.overheads) == {"decode", "prefill"}
    assert result.fitted.overheads["prefill"].source.startswith("decode's per-layer overhead")
    assert result.fitted.overheads["decode"].seconds == pytest.approx(DECODE_OVERHEAD_S, rel=0.2)
    decode = result.fitted.lookup("decode", "NVIDIA")
    assert decode is not None and decode.value == pytest.approx(DECODE_BW, rel=0.1)


def test_a_run_is_predicted_under_its_stated_layout_and_one_that_cannot_split_is_skipped(
    tmp_path: Path,
) -> None:
    """Llama-2-13B has 40 heads: over 2 devices it can run attention data parallel; over 3 no
    layout splits the heads, so the row is skipped naming its row and column. A row that
    states nothing is laid out as an engine would (tp over its devices: tp=1 on one)."""
    rows = fixture_rows()
    stated = {**rows[2], "run_id": "l1", "devices": "2", "layout": "dp_attention=2"}
    wrong = {**rows[2], "run_id": "l2", "devices": "3", "layout": "tp=3"}
    result = backtest(
        read_published_runs(write_fixture(tmp_path / "r.csv", [*rows, stated, wrong])),
        builtin_catalog(),
    )
    layouts = result.runs.set_index("run_id")["layout"]
    assert layouts["l1"] == "dp_attention=2" and layouts["d3"] == "tp=1"
    assert any(
        s.startswith(f"row {len(rows) + 2} (l2), column 'layout': llama-2-13b cannot be served")
        for s in result.skipped
    )
