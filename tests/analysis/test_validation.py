"""The prediction a workload probe is checked against: a roofline on this run's ceilings."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from tasks.analysis.models.presets import preset
from tasks.analysis.validation import (
    Ceilings,
    StepCost,
    ceilings,
    cut,
    median_abs_error,
    predict,
    ratio,
    step_cost,
)


def test_prediction_is_the_longer_of_moving_the_bytes_and_doing_the_flops() -> None:
    # 2 GB at 100 GB/s = 20 ms; 1 TFLOP at 10 TFLOP/s = 100 ms: compute-bound, 100 ms.
    p = predict(StepCost(bytes=2e9, flops=1e12), Ceilings(100e9, 10e12))
    assert p.memory_s == pytest.approx(0.02) and p.compute_s == pytest.approx(0.1)
    assert p.step_s == pytest.approx(0.1) and p.bound == "compute"
    assert predict(StepCost(2e9, 1e9), Ceilings(100e9, 10e12)).bound == "memory"


def test_ratio_and_median_error() -> None:
    assert ratio(0.15, 0.1) == pytest.approx(1.5)
    assert math.isnan(ratio(math.nan, 0.1))
    assert median_abs_error([1.1, 0.8, 1.5, math.nan]) == pytest.approx(0.2)
    assert math.isnan(median_abs_error([]))


def test_cut_keeps_the_layer_mix_in_proportion() -> None:
    v3 = preset("deepseek-v3")
    assert cut(v3, 1).dense_layers == 0 and cut(v3, 1).moe_layers == 1
    assert cut(v3, 61) == v3
    gemma = cut(preset("gemma-2-27b"), 4)
    assert (gemma.layers, gemma.sliding_layers) == (4, 2)


def test_step_cost_is_per_step() -> None:
    arch = preset("mistral-7b")
    decode = step_cost(
        arch, phase="decode", batch=4, context=1024, weights="bf16", kv="bf16", compute="bf16"
    )
    one = step_cost(
        arch, phase="decode", batch=1, context=1024, weights="bf16", kv="bf16", compute="bf16"
    )
    # Four sequences share one weight read: more bytes than one, far fewer than four times.
    assert one.bytes < decode.bytes < 2 * one.bytes
    assert decode.flops == pytest.approx(4 * one.flops, rel=0.01)


def test_ceilings_are_this_devices_best_triad_and_gemm() -> None:
    rows = pd.DataFrame(
        [
            {"probe": "triad", "dtype": "float32", "status": "ok", "device_index": 0, "best": 5e9},
            {"probe": "triad", "dtype": "float32", "status": "ok", "device_index": 0, "best": 6e9},
            {"probe": "triad", "dtype": "float32", "status": "ok", "device_index": 1, "best": 9e9},
            {
                "probe": "matmul",
                "dtype": "float32",
                "status": "unstable",
                "device_index": 0,
                "best": 1e11,
            },
            {
                "probe": "matmul",
                "dtype": "float32",
                "status": "failed",
                "device_index": 0,
                "best": 9e11,
            },
        ]
    )
    assert ceilings(rows, "float32") == Ceilings(6e9, 1e11)
    assert ceilings(rows, "bfloat16") is None
