"""Training workloads in the audit: their step, the wall it binds on, what each mitigation does to
it, and the rows refused before any of it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.errors import ProfileError
from hardware_profiles.scale_out import read_scale_out
from tasks.analysis.supply.efficiency import Efficiency
from tasks.analysis.training.audit import (
    check_rows,
    main_hardware,
    most_devices,
    training_findings,
)
from tasks.analysis.training.backtest import STREAM_BANDWIDTH
from tasks.analysis.training.layout import Layout, TrainingRun
from tasks.analysis.training.network import network_for
from tasks.analysis.training.step_time import device_from_catalog, step_time
from tasks.analysis.workload.presets import preset

FITTED = {("all", "all"): Efficiency(0.5, "test: half the peak", 0.1)}
H100 = {
    str(k): v
    for k, v in builtin_catalog()
    .set_index("accelerator_id", drop=False)
    .loc["nvidia-h100-sxm"]
    .items()
}


def _step(run: TrainingRun) -> float:
    return step_time(
        preset("llama-3.1-70b"), run, device_from_catalog(H100, run.compute),
        network_for(H100, read_scale_out()), FITTED[("all", "all")], STREAM_BANDWIDTH,
    ).step_time_s  # fmt: skip


def _workloads(demand: float, layout: str = "dp=128,tp=8") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "workload_id": "pretrain-70b",
                "name": "70B pretraining",
                "pool": "train",
                "phase": "training",
                "precision": "bf16",
                "model_preset": "llama-3.1-70b",
                "context_tokens": 8192,
                "layout": layout,
                "global_batch_tokens": 4 * 2**20,
                "micro_batch": 1,
                "recompute": "selective",
                "zero_stage": 1,
                "optimizer": "adam",
                "demand_units_per_s": demand,
                "demand_growth_per_year": 1.0,
            },
            {"workload_id": "chat", "pool": "train", "phase": "decode", "layout": None},
        ]
    )


def test_a_job_is_timed_with_each_mitigation_and_its_stated_risk() -> None:
    """The summary's step is :func:`step_time`'s at the row's layout; FP8 matmuls' speedup is
    the ratio of the two steps; each mitigation carries its accuracy risk and cost."""
    run = TrainingRun(Layout(dp=128, tp=8), global_batch=512, sequence=8192, zero=1)
    step = _step(run)
    found = training_findings(
        _workloads(demand=1 / (2 * step)), builtin_catalog(), {"train": ("nvidia-h100-sxm", 2048)},
        read_scale_out(), FITTED,
    )  # fmt: skip
    assert found.skipped == []
    (row,) = found.summary.to_dict("records")
    assert row["step_time_s"] == pytest.approx(step)
    assert (row["wall"], row["bound"], row["step_spread"]) == ("compute", "compute", 0.1)
    assert row["memory_total_bytes"] > row["memory_weights_bytes"] > 0
    fp8 = found.mitigations.set_index("mitigation").loc["fp8 matmuls"]
    speedup = step / _step(TrainingRun(Layout(dp=128, tp=8), 512, 8192, zero=1, compute="fp8"))
    assert fp8["speedup"] == pytest.approx(speedup)
    assert "convergence risk" in fp8["accuracy_risk"]
    assert set(found.mitigations["mitigation"]) >= {
        "full recompute", "2x tensor parallel", "2x pipeline parallel", "2x scale-out network",
    }  # fmt: skip


def test_a_layout_that_does_not_fit_is_the_capacity_wall_and_more_tp_fits() -> None:
    found = training_findings(
        _workloads(demand=1e-6, layout="dp=256,tp=4"), builtin_catalog(),
        {"train": ("nvidia-h100-sxm", 2048)}, read_scale_out(), FITTED,
    )  # fmt: skip
    (row,) = found.summary.to_dict("records")
    assert (row["wall"], row["fits"]) == ("capacity", False)
    fixes = found.mitigations[found.mitigations["fits"]]
    assert "2x tensor parallel" in set(fixes["mitigation"])


def test_a_pool_too_small_for_the_layout_is_skipped_with_the_reason() -> None:
    found = training_findings(
        _workloads(demand=0.01), builtin_catalog(), {"train": ("nvidia-h100-sxm", 512)},
        read_scale_out(), FITTED,
    )  # fmt: skip
    assert found.summary.empty
    assert found.skipped == [
        "pretrain-70b: layout dp=128,tp=8 needs 1024 devices; pool 'train' holds 512 x "
        "nvidia-h100-sxm"
    ]


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("micro_batch", 1024, "w.parquet, row 1, column 'micro_batch': micro-batch 1024 exceeds "
         "the global batch of 512 sequences; valid micro-batches: 1, 2, 4"),
        ("layout", "dp=256,tp=8", "w.parquet, row 1, column 'layout': layout dp=256,tp=8 spans "
         "dp·tp·pp·cp = 2048 devices; pool 'train' never holds more than 1024 of one model: "
         "with tp·pp·cp = 8, valid dp: 1 to 128"),
        ("layout", "dp=16,pp=64", "w.parquet, row 1, column 'layout': pp·vp = 64 does not divide"),
        ("global_batch_tokens", 4 * 2**20 + 1, "w.parquet, row 1, column 'global_batch_tokens': "
         "global_batch_tokens 4,194,305 is not a whole number of 8192-token sequences"),
    ],
)  # fmt: skip
def test_a_row_no_engine_could_lay_out_is_refused_naming_row_and_column(
    column: str, value: object, problem: str
) -> None:
    """512 sequences over dp=128 leave 4 per rank: micro-batches 1, 2 or 4. 1,024 H100s are
    the most the pool holds: with tp = 8, dp of at most 1,024/8 = 128. Llama 3.1 70B's 80
    layers do not split into 64 stages."""
    rows = _workloads(demand=1.0).iloc[:1].copy()
    rows[column] = pd.Series([value], dtype=object)
    with pytest.raises(ProfileError) as refused:
        check_rows(rows, "w.parquet", {"train": 1024})
    assert str(refused.value).startswith(problem)
    check_rows(_workloads(demand=1.0), "w.parquet", {"train": 1024})  # the row as stated runs


def test_most_devices_is_the_largest_running_sum_of_one_model_in_a_pool() -> None:
    """train: 512 H100 bought, 512 more, then 768 retired: at most 1,024; 256 B300 beside."""
    roadmap = pd.DataFrame(
        {
            "pool": ["train"] * 4,
            "effective_date": pd.to_datetime(
                ["2026-01-01", "2026-06-01", "2027-01-01", "2027-01-01"]
            ).date,
            "accelerator_id": ["h100", "h100", "h100", "b300"],
            "count_delta": [512, 512, -768, 256],
        }
    )
    assert most_devices(roadmap) == {"train": 1024}


def test_main_hardware_is_the_model_a_pool_holds_most_of_in_its_first_month() -> None:
    counts = np.zeros((2, 2, 3))
    counts[0, 0, 1], counts[0, 1, 1], counts[0, 1, 2] = 8, 16, 32
    assert main_hardware(["a", "b"], ["x", "y"], counts) == {"a": ("y", 16)}
