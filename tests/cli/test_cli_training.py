"""`memwall predict --phase training`, `memwall backtest --phase training` and `memwall plan
training` end to end, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.scale_out import read_scale_out
from hardware_profiles.schema import MiB
from tasks.analysis.supply.efficiency import Efficiency
from tasks.analysis.training.backtest import STREAM_BANDWIDTH
from tasks.analysis.training.layout import Layout, TrainingRun
from tasks.analysis.training.network import network_for
from tasks.analysis.training.step_time import device_from_catalog, step_time
from tasks.analysis.workload.presets import preset
from tests.cli.test_cli import memwall

PREDICT = ["predict", "--phase", "training", "--preset", "llama-3.1-70b", "--context", "8192"]


def _one_error(result_stderr: str) -> str:
    errors = [line for line in result_stderr.splitlines() if line.startswith("memwall: error:")]
    assert len(errors) == 1, result_stderr
    assert "Traceback" not in result_stderr
    return errors[0]


def test_predict_training_json_is_the_core_step_at_the_fitted_efficiency(tmp_path: Path) -> None:
    """dp=128, tp=8 on 1,024 H100s, 4M tokens (512 sequences of 8,192), ZeRO-1, selective:
    the CLI prints what step_time gives at the efficiency it names."""
    result = memwall(
        [*PREDICT, "--layout", "dp=128,tp=8", "--global-batch-tokens", "4M", "--zero", "1",
         "--recompute", "selective", "--json"],
        None,
        tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["layout"] == "dp=128,tp=8"
    assert out["global_batch_tokens"] == 4 * 2**20
    assert 0 < out["mfu"] < 1
    assert set(out["time_by_part_s"]) >= {"matmul", "pipeline_bubble", "data_parallel"}
    assert set(out["memory_per_device"]) >= {"weights_bytes", "activations_bytes", "total_bytes"}
    assert out["matmul_efficiency_source"].startswith("fitted on")
    row = builtin_catalog().set_index("accelerator_id", drop=False).loc["nvidia-h100-sxm"]
    row_map = {str(k): v for k, v in row.items()}
    run = TrainingRun(Layout(dp=128, tp=8), global_batch=512, sequence=8192, zero=1)
    expected = step_time(
        preset("llama-3.1-70b"), run, device_from_catalog(row_map, "bf16"),
        network_for(row_map, read_scale_out()),
        Efficiency(out["matmul_efficiency"], "", 0.0), STREAM_BANDWIDTH,
    )  # fmt: skip
    assert out["step_time_s"] == pytest.approx(expected.step_time_s)
    assert out["tokens_per_s"] == pytest.approx(4 * 2**20 / expected.step_time_s)
    assert out["wall"] == expected.wall


def test_predict_training_names_the_overflowing_term_and_layouts_that_fit(tmp_path: Path) -> None:
    result = memwall(
        [*PREDICT, "--layout", "dp=1024", "--global-batch-tokens", "8M", "--zero", "1"],
        None,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "bound          capacity:" in result.stdout
    assert "is the largest term" in result.stdout
    assert "layouts that fit, nearest first:" in result.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--layout", "dp=64,tp=8", "--devices", "1024", "--global-batch-tokens", "4M"],
         "uses dp·tp·pp·cp = 512 devices, not 1024: with tp=8, pp=1, cp=1 use dp=128"),
        (["--layout", "dp=1,tp=3", "--global-batch-tokens", "4M"], "valid tp: 1, 2, 4, 8"),
        (["--layout", "dp=1,pp=3", "--global-batch-tokens", "4M"], "valid pp·vp: 1, 2, 4, 5"),
        (["--layout", "dp=1", "--global-batch-tokens", "16K", "--micro-batch", "4"],
         "micro-batch 4 exceeds the global batch of 2 sequences; valid micro-batches: 1, 2"),
        (["--layout", "dp=1", "--global-batch-tokens", "12000"],
         "valid near it: 8,192 (1 sequences) or 16,384 (2)"),
        (["--layout", "dp=1,xx=2", "--global-batch-tokens", "4M"], "a key of dp, tp, pp, cp"),
    ],
)  # fmt: skip
def test_bad_training_input_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], says: str
) -> None:
    result = memwall([*PREDICT, *args], None, tmp_path)
    assert result.returncode == 2
    assert says in _one_error(result.stderr)
    assert result.stdout == ""


def test_backtest_training_prints_every_run_and_the_held_out_error(tmp_path: Path) -> None:
    result = memwall(["backtest", "--phase", "training", "--json"], None, tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert len(out["runs"]) >= 12
    assert set(out["summary"]) == {"fit", "holdout", "loso"}
    assert out["summary"]["holdout"]["runs"] > 0
    # Each source's own level (its stack's share of the peak) is part of the leave-one-source-
    # out error: with it taken out, what is left is no larger.
    offsets = out["loso_offsets"]
    assert offsets["runs"] == out["summary"]["loso"]["runs"]
    assert 0.0 <= offsets["offset_share"] <= 1.0
    assert offsets["within_source_mape"] <= offsets["loso_mape"]
    assert offsets["loso_mape"] == pytest.approx(out["summary"]["loso"]["mape"])
    text = memwall(["backtest", "--phase", "training"], None, tmp_path)
    assert "holdout:" in text.stdout and "leave one source out:" in text.stdout
    assert "with each source's own mean offset taken out" in text.stdout


def test_plan_training_lists_fitting_layouts_fastest_first(tmp_path: Path) -> None:
    result = memwall(
        ["plan", "training", "--preset", "llama-3.1-70b", "--devices", "256",
         "--global-batch-tokens", "4M", "--context", "8192", "--json"],
        None,
        tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    layouts = json.loads(result.stdout)
    assert 1 <= len(layouts) <= 5
    times = [p["step_time_s"] for p in layouts]
    assert times == sorted(times)
    # The default H100 SXM reports 81,559 MiB: 0.9 x 85.52e9 = 76.97e9 B usable per device.
    assert all(p["memory_per_device_bytes"] <= 0.9 * 81_559 * MiB for p in layouts)


def test_workloads_add_writes_the_training_columns_and_refuses_a_bad_layout(
    tmp_path: Path,
) -> None:
    base = ["workloads", "add", "--owner", "ml", "--pool", "training", "--demand", "0.1",
            "--preset", "llama-3.1-8b", "--phase", "training", "--context", "4096",
            "--global-batch-tokens", "4M"]  # fmt: skip
    to = tmp_path / "w.parquet"
    good = memwall(
        [*base, "--layout", "dp=64,tp=8", "--zero", "3", "--to", str(to)], None, tmp_path
    )
    assert good.returncode == 0, good.stderr
    row = pd.read_parquet(to).iloc[0]
    assert (row["layout"], row["global_batch_tokens"], row["zero_stage"]) == (
        "dp=64,tp=8",
        4 * 2**20,
        3,
    )
    assert (row["recompute"], row["optimizer"], row["micro_batch"]) == ("selective", "adam", 1)
    bad = memwall(
        [*base, "--layout", "dp=64,tp=3", "--to", str(tmp_path / "x.parquet")], None, tmp_path
    )
    assert bad.returncode == 2
    assert "valid tp: 1, 2, 4, 8" in _one_error(bad.stderr)
    assert not (tmp_path / "x.parquet").exists()
