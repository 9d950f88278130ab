"""Attention runs at the 16-bit peak under fp8 matmuls, by hand.

H100 SXM (built-in catalog): dense bf16 989.5e12 FLOP/s, fp8 1,979e12, fp32 67e12. An fp8
model's prefill attention (FlashAttention-2 / TensorRT-LLM context FMHA take fp16/bf16 inputs)
runs at 989.5e12 x the attention efficiency 0.5 = 494.75e12 FLOP/s, not at 1,979e12 x 0.5; its
matmuls keep the fp8 peak. A bf16 or fp32 model's attention runs at its own peak.
"""

from __future__ import annotations

import pytest

from hardware_profiles.catalog import builtin_catalog
from tasks.analysis.supply.efficiency import Efficiency
from tasks.analysis.supply.predict import attention_peak, predict
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate

H100 = {
    str(k): v
    for k, v in builtin_catalog()
    .set_index("accelerator_id", drop=False)
    .loc["nvidia-h100-sxm"]
    .items()
}
ONE = Efficiency(1.0, "test", 0.0)


def test_narrow_precisions_take_the_16_bit_peak() -> None:
    assert attention_peak(H100, "fp8") == pytest.approx(989.5e12)
    assert attention_peak(H100, "bf16") == pytest.approx(989.5e12)
    assert attention_peak(H100, "fp32") == pytest.approx(67e12)


def test_an_fp8_prefills_attention_runs_at_the_bf16_peak() -> None:
    arch = preset("llama-2-7b")
    est = estimate(arch, phase="prefill", batch=1, context=4096, weights="fp8", activations="fp8")
    step = predict(arch, est, H100, ONE, ONE)
    scores = step.figures.attention_flops_per_device
    assert scores > 0
    assert step.attention_time_s == pytest.approx(scores / (989.5e12 * 0.5))
    matmuls = step.figures.step_flops_per_device - scores
    assert step.compute_time_s == pytest.approx(matmuls / 1979e12 + scores / (989.5e12 * 0.5))
