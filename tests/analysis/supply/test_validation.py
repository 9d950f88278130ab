"""The prediction a workload probe is checked against: a roofline per part of the step, on this
run's ceilings and the GEMM rates measured at each part's shape, the parts added up."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from tasks.analysis.supply.validation import (
    HostCeilings,
    Part,
    ceilings,
    cut,
    median_abs_error,
    predict_parts,
    ratio,
    step_cost,
    step_parts,
)
from tasks.analysis.workload.presets import preset


def test_each_part_takes_the_longer_of_its_bytes_and_flops_and_the_step_is_their_sum() -> None:
    # Matmuls: 2 GB at 100 GB/s = 20 ms; 1 TFLOP at the 16-row GEMM's measured 5 TFLOP/s =
    # 200 ms: compute-bound, 200 ms. Cache: 1 GB at 100 GB/s = 10 ms; 1 GFLOP at the square
    # GEMM's 10 TFLOP/s (no shape) = 0.1 ms: memory-bound, 10 ms. Step: 200 + 10 = 210 ms.
    parts = [Part("matmuls", 2e9, 1e12, (16, 4096, 4096)), Part("attention", 1e9, 1e9)]
    p = predict_parts(parts, HostCeilings(100e9, 10e12, {(16, 4096, 4096): 5e12}))
    assert p.step_s == pytest.approx(0.21)
    assert p.memory_s == pytest.approx(0.03) and p.compute_s == pytest.approx(0.2001)
    matmuls, attention = p.parts
    assert (matmuls.bound, matmuls.step_s, matmuls.flops_per_s) == ("compute", 0.2, 5e12)
    assert attention.bound == "memory" and attention.step_s == pytest.approx(0.01)
    # A shape not measured (a waived case) runs at the square GEMM's rate: 1e12 / 1e13 = 0.1 s.
    alone = predict_parts([Part("matmuls", 2e9, 1e12, (1, 2, 3))], HostCeilings(100e9, 10e12))
    assert alone.step_s == pytest.approx(0.1) and alone.parts[0].bound == "compute"


def _parts(name: str, phase: str, batch: int, context: int) -> tuple[Part, ...]:
    kw = {"weights": "fp32", "kv": "fp32", "compute": "fp32"}
    arch = cut(preset(name), 1)
    return step_parts(arch, phase=phase, batch=batch, context=context, **kw)


def test_step_parts_add_up_to_the_step_cost() -> None:
    for name, phase, batch, context in (
        ("mistral-7b", "decode", 16, 1024),
        ("mistral-7b", "prefill", 1, 128),
        ("mixtral-8x7b", "decode", 16, 1024),
        ("deepseek-v3", "decode", 4, 512),
    ):
        parts = _parts(name, phase, batch, context)
        whole = step_cost(
            cut(preset(name), 1),
            phase=phase,
            batch=batch,
            context=context,
            weights="fp32",
            kv="fp32",
            compute="fp32",
        )
        assert sum(p.bytes for p in parts) == pytest.approx(whole.bytes, rel=1e-9)
        assert sum(p.flops for p in parts) == pytest.approx(whole.flops, rel=1e-9)


def test_each_part_runs_at_the_rows_it_multiplies_and_its_widest_matrix() -> None:
    # Mistral 7B: hidden 4096, gated FFN 2 x 14336 = 28672 wide (its widest matrix), vocab 32768.
    decode = {p.name: p for p in _parts("mistral-7b", "decode", 16, 1024)}
    assert list(decode) == ["matmuls", "lm_head", "attention"]
    assert decode["matmuls"].gemm == (16, 4096, 28672)
    assert decode["lm_head"].gemm == (16, 4096, 32768)
    # The head reads 4096 x 32768 fp32 weights (4 B): 536,870,912 B; 2·16·4096·32768 FLOPs.
    assert decode["lm_head"].bytes == 4 * 4096 * 32768
    assert decode["lm_head"].flops == 2 * 16 * 4096 * 32768
    # The cache: 16 sequences x 1024 positions x 8 KV heads x 128 x 2 (K, V) x 4 B read, and
    # one position per sequence written: 134,217,728 + 131,072 B.
    assert decode["attention"].bytes == 16 * 1024 * 8 * 128 * 2 * 4 + 16 * 8 * 128 * 2 * 4
    assert decode["attention"].gemm is None  # the square GEMM's rate
    # Prefill: the layers multiply the 128 prompt tokens; the head only the last one.
    prefill = {p.name: p for p in _parts("mistral-7b", "prefill", 1, 128)}
    assert prefill["matmuls"].gemm == (128, 4096, 28672)
    assert prefill["lm_head"].gemm == (1, 4096, 32768)
    # Mixtral at batch 1: its 2 chosen experts (gated, 2 x 14336 wide) get one token each and
    # are read whole: 2 x 3 x 4096 x 14336 x 4 B = 1,409,286,144 B; the layers' widest
    # non-expert matrix is the fused QKV (4096 x (4096 + 2·1024)).
    one = {p.name: p for p in _parts("mixtral-8x7b", "decode", 1, 1024)}
    assert list(one) == ["matmuls", "experts", "lm_head", "attention"]
    assert one["experts"].gemm == (1, 4096, 28672) and one["matmuls"].gemm == (1, 4096, 6144)
    assert one["experts"].bytes == 2 * 3 * 4096 * 14336 * 4
    assert one["experts"].flops == 2 * 1 * 2 * 3 * 4096 * 14336
    # At batch 16, 8·(1 − (6/8)^16) = 7.92 experts are touched by 32 choices: 4 rows each.
    sixteen = {p.name: p for p in _parts("mixtral-8x7b", "decode", 16, 1024)}
    assert sixteen["experts"].gemm == (4, 4096, 28672)
    assert sixteen["matmuls"].gemm == (16, 4096, 6144)


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
    assert ceilings(rows, "float32") == HostCeilings(6e9, 1e11)
    assert ceilings(rows, "bfloat16") is None
