"""`memwall predict` and `memwall backtest` end to end, as a user runs them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from hardware_profiles.catalog import builtin_catalog
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate
from tests.analysis.supply.published_fixture import (
    DECODE_BW,
    DECODE_OVERHEAD_S,
    fixture_rows,
    write_fixture,
)
from tests.cli.test_cli import memwall

PREDICT_KEYS = {
    "step_time_s",
    "tokens_per_s",
    "tokens_per_s_per_device",
    "bound",
    "bandwidth_efficiency",
    "flops_efficiency",
    "bandwidth_efficiency_source",
    "flops_efficiency_source",
}


def _one_error(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("memwall: error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


def test_predict_json_uses_the_fitted_decode_efficiency_and_says_so(tmp_path: Path) -> None:
    # Fixture decode runs were measured at 60 % of H100 bandwidth (3.35 TB/s): 2.01e12 B/s,
    # plus 50 us of overhead per layer: 32 layers, 1.6 ms per step.
    runs = write_fixture(tmp_path / "runs.csv")
    result = memwall(
        ["predict", "--preset", "llama-3.1-8b", "--batch", "4", "--context", "2048",
         "--accelerator", "nvidia-h100-sxm", "--runs", str(runs), "--json"],
        None,
        tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) >= PREDICT_KEYS
    assert out["bandwidth_efficiency"] == pytest.approx(DECODE_BW, rel=0.01)
    assert out["bandwidth_efficiency_source"] == "fitted on 3 published runs (decode, NVIDIA)"
    assert out["flops_efficiency_source"].startswith("default")
    est = estimate(preset("llama-3.1-8b"), phase="decode", batch=4, context=2048)
    bandwidth = (
        builtin_catalog()
        .set_index("accelerator_id")
        .loc["nvidia-h100-sxm", "mem_bandwidth_bytes_per_s"]
    )
    assert out["overhead_time_s"] == pytest.approx(32 * DECODE_OVERHEAD_S, rel=0.02)
    step = est.bytes_per_unit * 4 / (bandwidth * out["bandwidth_efficiency"])
    step += out["overhead_time_s"]
    assert out["step_time_s"] == pytest.approx(step)
    assert out["tokens_per_s"] == pytest.approx(4 / step)
    assert out["bound"] == "memory"
    # The step's band is the audit's: the dense class's leave-one-source-out spread s of
    # these runs, P10-P90 = step · exp(∓1.2816·s).
    band = out["band"]
    assert band["supply_spread_source"] == (
        "the leave-one-source-out spread of the published dense runs"
    )
    tested = memwall(["backtest", "--runs", str(runs), "--json"], None, tmp_path)
    spread = json.loads(tested.stdout)["leave_one_source_out"]["class_spread"]["dense"]
    assert band["supply_spread"] == pytest.approx(spread)
    assert band["step_p10_s"] == pytest.approx(step * math.exp(-1.2816 * spread), rel=1e-3)
    assert band["step_p90_s"] == pytest.approx(step * math.exp(1.2816 * spread), rel=1e-3)


def test_predict_text_names_bound_and_sources(tmp_path: Path) -> None:
    result = memwall(
        ["predict", "--preset", "llama-3.1-70b", "--devices", "4", "--accelerator",
         "nvidia-h100-sxm", "--runs", str(write_fixture(tmp_path / "runs.csv"))],
        None,
        tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "per replica" in result.stdout and "per device" in result.stdout
    assert "bound          memory" in result.stdout
    assert "fitted on 3 published runs (decode, NVIDIA)" in result.stdout
    flat = " ".join(result.stdout.split())
    assert "step band P10-P90" in flat and "leave-one-source-out spread" in flat


def test_predict_lays_out_a_replica_as_told_or_as_an_engine_would(tmp_path: Path) -> None:
    """DeepSeek-V3 on 8 H200 at batch 64: told dp_attention=8,ep=8 it shows that layout, its
    all-to-all bytes (58 MoE layers · 2 · 64 · 7168 · top-8 · 1 B at fp8 = 425,721,856 B) and
    the busiest expert rank; told nothing it takes tp=8 and says why."""
    runs = str(write_fixture(tmp_path / "runs.csv"))
    common = [
        "predict", "--preset", "deepseek-v3", "--accelerator", "nvidia-h200-sxm",
        "--batch", "64", "--weights", "fp8", "--activations", "fp8", "--runs", runs,
    ]  # fmt: skip
    told = memwall([*common, "--layout", "dp_attention=8,ep=8", "--json"], None, tmp_path)
    assert told.returncode == 0, told.stderr
    out = json.loads(told.stdout)
    assert out["devices"] == 8 and out["layout"] == "dp_attention=8,ep=8"
    assert out["per_device"]["alltoall_bytes_per_step"] == 58 * 2 * 64 * 7168 * 8
    assert out["per_device"]["expert_load_busiest"] > out["per_device"]["expert_load_mean"] == 64
    assert out["collective_calls_per_step"] == 3 + 116
    assert out["communication_latency_time_s"] == pytest.approx(119 * 8e-6)
    default = memwall([*common, "--devices", "8"], None, tmp_path)
    assert default.returncode == 0, default.stderr
    assert "layout tp=8 (tensor parallel over all 8 devices" in default.stdout
    assert "122 calls a step" in default.stdout


def test_predict_under_load_carries_the_arriving_prompts(tmp_path: Path) -> None:
    """c = 25, P = 5,000, O = 500: 25 · 5,000 / 500 = 250 prompt tokens on each decode step,
    so the time per output token under load exceeds the step alone and tokens/s = 25 / it."""
    result = memwall(
        ["predict", "--preset", "llama-3.1-70b", "--accelerator", "nvidia-h100-sxm",
         "--devices", "8", "--batch", "25", "--context", "5250", "--prompt", "5000",
         "--output", "500", "--runs", str(write_fixture(tmp_path / "runs.csv")), "--json"],
        None,
        tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    load = out["under_load"]
    assert load["prefill_tokens_per_step"] == 250
    assert load["time_per_output_token_s"] > out["step_time_s"]
    assert load["output_tokens_per_s"] == pytest.approx(25 / load["time_per_output_token_s"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "no-such-model"], "unknown model preset 'no-such-model'"),
        (["--preset", "llama-2-7b", "--accelerator", "x9"], "unknown accelerator 'x9'"),
        (["--preset", "llama-2-7b", "--devices", "0"], "--devices must be > 0"),
        (["--preset", "llama-2-7b", "--layout", "tq=2"], "'tq=2' is not DEGREE=N"),
        (["--preset", "llama-2-7b", "--prompt", "100"], "--prompt and --output go together"),
        (
            ["--preset", "llama-2-7b", "--phase", "prefill", "--prompt", "9", "--output", "9"],
            "describe decode under load, not prefill",
        ),
        (
            ["--preset", "deepseek-v3", "--devices", "8", "--layout", "dp_attention=4,ep=4"],
            "it spans 4 devices, not 8; valid layouts for 8 devices: tp=8 | tp=8,ep=8 |",
        ),
    ],
)
def test_predict_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = memwall(["predict", *args], None, tmp_path)
    assert result.returncode == 2
    assert message in _one_error(result.stderr)


def test_backtest_prints_per_run_error_and_both_splits(tmp_path: Path) -> None:
    result = memwall(["backtest", "--runs", str(write_fixture(tmp_path / "r.csv"))], None, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "d4           holdout llama-2-7b" in result.stdout
    assert "fit: 5 runs, MAPE 0.0 %" in result.stdout
    assert "holdout: 3 runs, MAPE 0.0 %" in result.stdout
    assert "skipped row 9 (u1): preset 'no-such-model' is unknown" in result.stdout
    assert "leave-one-source-out: 8 runs" in result.stdout
    assert "  class dense: 8 runs" in result.stdout
    assert "  vendor NVIDIA: 8 runs" in result.stdout


def test_backtest_json_is_strict(tmp_path: Path) -> None:
    result = memwall(
        ["backtest", "--runs", str(write_fixture(tmp_path / "r.csv")), "--json"], None, tmp_path
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))
    assert out["summary"]["holdout"]["runs"] == 3
    assert out["stream_defaults_summary"]["fit"]["bias"] < -0.1
    assert len(out["runs"]) == 8
    # One source: left out, nothing is left to fit, so its runs meet the STREAM defaults
    # (bandwidth 0.85 against the 0.6 they ran at): every step predicted too fast.
    loso = out["leave_one_source_out"]
    assert loso["sources"] == 1
    assert loso["overall"]["runs"] == 8 and loso["overall"]["bias"] < -0.1
    assert set(loso["by_class"]) == {"dense"} and loso["by_phase"]["prefill"]["runs"] == 3
    assert {r["source"] for r in out["runs"]} == {"example.org/fixture"}
    # One source, all too fast: most of its error is its offset; it contradicts nobody.
    dense = loso["disagreement_by_class"]["dense"]
    assert 0.5 < dense["offset_share"] <= 1.0 and dense["contradicting_pairs"] == 0
    assert dense["within_source_mape"] < dense["loso_mape"]


def test_backtest_malformed_row_exits_2_naming_file_row_and_column(tmp_path: Path) -> None:
    rows = fixture_rows()
    rows[2] = {**rows[2], "devices": "two"}
    path = write_fixture(tmp_path / "bad.csv", rows)
    result = memwall(["backtest", "--runs", str(path)], None, tmp_path)
    assert result.returncode == 2
    assert f"{path}, row 3, column 'devices'" in _one_error(result.stderr)


def test_predict_engine_picks_its_generations_expert_share_and_says_so(tmp_path: Path) -> None:
    """DeepSeek-R1 on 8 x H200 with the built-in runs: without --engine the routed experts run
    at the current engines' r (a fleet planned today runs one), with 'SGLang 0.4.3' (released
    2025-02) at the early engines' r, which is lower: the same step takes longer."""

    def run(*engine: str) -> dict[str, object]:
        result = memwall(
            ["predict", "--preset", "deepseek-r1", "--accelerator", "nvidia-h200-sxm",
             "--layout", "tp=8", "--batch", "32", "--context", "2048", "--weights", "fp8",
             "--activations", "fp8", *engine, "--json"],
            None,
            tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        out: dict[str, object] = json.loads(result.stdout)
        return out

    current, early = run(), run("--engine", "SGLang 0.4.3")
    assert "engines from 2025-07" in str(current["expert_matmul_efficiency_source"])
    assert "no engine stated" in str(current["expert_matmul_efficiency_source"])
    assert "engines before 2025-07" in str(early["expert_matmul_efficiency_source"])
    assert "'SGLang 0.4.3' released 2025-02" in str(early["expert_matmul_efficiency_source"])
    assert float(str(early["expert_matmul_efficiency"])) < float(
        str(current["expert_matmul_efficiency"])
    )
    assert float(str(early["step_time_s"])) > float(str(current["step_time_s"]))


def test_an_engine_version_memwall_cannot_date_is_refused_in_one_line(tmp_path: Path) -> None:
    """A version of an engine family RELEASES does not list would be taken as a current
    engine without a word: refused, naming the families memwall dates."""
    result = memwall(
        ["predict", "--preset", "deepseek-r1", "--accelerator", "nvidia-h200-sxm",
         "--engine", "FastServe 2.1"],
        None,
        tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert _one_error(result.stderr) == (
        "memwall: error: --engine 'FastServe 2.1': memwall dates the versions of sglang, vllm, "
        "tensorrt-llm only; give one of those with its version, or the engine's name alone "
        "(taken as a current one)"
    )
