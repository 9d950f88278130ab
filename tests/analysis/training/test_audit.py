"""Training workloads in the audit: their step, first wall and month, and what mitigations buy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.scale_out import read_scale_out
from tasks.analysis.supply.efficiency import Efficiency
from tasks.analysis.training.audit import main_hardware, training_findings
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


def test_a_job_at_twice_its_demand_meets_its_wall_in_a_year_at_100_percent_growth() -> None:
    """Headroom h = 1/(step·demand) = 2 and demand doubling yearly: 12·ln 2 / ln 2 = 12
    months. FP8 matmuls k times faster buy 12·ln(k)/ln(2) months (within the 36-month
    horizon)."""
    run = TrainingRun(Layout(dp=128, tp=8), global_batch=512, sequence=8192, zero=1)
    step = _step(run)
    found = training_findings(
        _workloads(demand=1 / (2 * step)), builtin_catalog(), {"train": ("nvidia-h100-sxm", 2048)},
        read_scale_out(), FITTED, 36,
    )  # fmt: skip
    assert found.skipped == []
    (row,) = found.summary.to_dict("records")
    assert row["step_time_s"] == pytest.approx(step)
    assert row["months_to_wall"] == pytest.approx(12.0)
    assert row["wall"] == "compute"
    assert row["memory_total_bytes"] > row["memory_weights_bytes"] > 0
    fp8 = found.mitigations.set_index("mitigation").loc["fp8 matmuls"]
    speedup = step / _step(TrainingRun(Layout(dp=128, tp=8), 512, 8192, zero=1, compute="fp8"))
    assert fp8["speedup"] == pytest.approx(speedup)
    assert fp8["months_bought"] == pytest.approx(12 * math.log(speedup) / math.log(2))
    assert "convergence risk" in fp8["accuracy_risk"]
    assert set(found.mitigations["mitigation"]) >= {
        "full recompute", "2x tensor parallel", "2x pipeline parallel", "2x scale-out network",
    }  # fmt: skip


def test_a_layout_that_does_not_fit_meets_the_capacity_wall_now() -> None:
    found = training_findings(
        _workloads(demand=1e-6, layout="dp=256,tp=4"), builtin_catalog(),
        {"train": ("nvidia-h100-sxm", 2048)}, read_scale_out(), FITTED, 36,
    )  # fmt: skip
    (row,) = found.summary.to_dict("records")
    assert (row["wall"], row["months_to_wall"], row["fits"]) == ("capacity", 0.0, False)
    fixes = found.mitigations[found.mitigations["fits"]]
    assert "2x tensor parallel" in set(fixes["mitigation"])
    assert (fixes["months_bought"] > 0).all()


def test_a_pool_too_small_for_the_layout_is_skipped_with_the_reason() -> None:
    found = training_findings(
        _workloads(demand=0.01), builtin_catalog(), {"train": ("nvidia-h100-sxm", 512)},
        read_scale_out(), FITTED, 36,
    )  # fmt: skip
    assert found.summary.empty
    assert found.skipped == [
        "pretrain-70b: layout dp=128,tp=8 needs 1024 devices; pool 'train' holds 512 x "
        "nvidia-h100-sxm"
    ]


def test_main_hardware_is_the_model_a_pool_holds_most_of_in_its_first_month() -> None:
    counts = np.zeros((2, 2, 3))
    counts[0, 0, 1], counts[0, 1, 1], counts[0, 1, 2] = 8, 16, 32
    assert main_hardware(["a", "b"], ["x", "y"], counts) == {"a": ("y", 16)}
