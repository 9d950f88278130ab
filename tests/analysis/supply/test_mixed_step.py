"""Decode under load, worked by hand.

Accelerator x1 (as in test_predict): 2e12 B/s, 1e15 bf16 FLOP/s, 450e9 B/s NVLink-class link;
efficiencies 0.5 for bandwidth and decode compute, prefill matmuls at 0.5 too.
"""

from __future__ import annotations

import pytest

from tasks.analysis.supply.efficiency import ATTENTION_EFFICIENCY, Efficiency
from tasks.analysis.supply.mixed_step import mixed_step, prefill_tokens_per_step
from tasks.analysis.supply.predict import PredictionError, predict
from tasks.analysis.workload.layout import Layout
from tasks.analysis.workload.layout_figures import layout_figures
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate

X1 = {
    "accelerator_id": "x1",
    "vendor": "NVIDIA",
    "mem_bandwidth_bytes_per_s": 2e12,
    "peak_flops_per_s_bf16": 1e15,
    "memory_bytes": 80e9,
    "interconnect_bandwidth_bytes_per_s": 450e9,
}
HALF = Efficiency(0.5, "test", 0.1)
SEVENTY = preset("llama-3.1-70b")


def test_prompt_tokens_ride_on_each_decode_step_at_c_p_over_o() -> None:
    """c = 25 sequences decoding, P = 5,000-token prompts, O = 500 output tokens: a request
    finishes every 500 steps per slot, so 25 / 500 = 0.05 requests arrive per step, each with
    5,000 prompt tokens: 0.05 · 5,000 = 250 prefill tokens on every decode step."""
    assert prefill_tokens_per_step(25, 5000, 500) == 250
    assert prefill_tokens_per_step(1, 128, 128) == 1
    with pytest.raises(PredictionError, match="output tokens must be > 0"):
        prefill_tokens_per_step(25, 5000, 0)


def test_the_mixed_step_adds_the_chunk_s_work_to_the_decode_step() -> None:
    """Llama 3.1 70B at c = 25, P = 5,000, O = 500 on 8 x x1 (tp=8), decoding at the mean
    context 5,000 + 250 = 5,250. The chunk is 250 tokens of 5,000-token prompts: 2 · 68.45e9
    (the blocks' weights; the LM head runs for a prompt's last token only) · 250 = 3.42e13
    matmul FLOPs, 4.28e12 per device, 8.6 ms at 0.5 of 1e15 FLOP/s. The decode step reads
    weights 141 GB + KV 25 · 5,250 · 327,680 B = 43 GB, 23 GB per device, 23 ms at 0.5 of
    2e12 B/s: the step stays memory-bound. Its link time grows by the chunk's all-reduce bytes
    (2 per layer of 250 · 8192 · 2 B, ring 2·7/8, over 450e9 B/s) without new calls."""
    est = estimate(SEVENTY, phase="decode", batch=25, context=5250)
    decode = predict(SEVENTY, est, X1, HALF, HALF, devices=8)
    loaded = mixed_step(SEVENTY, decode, est, X1, HALF, 5000, 500)
    assert loaded.prefill_tokens_per_step == 250
    prefill = estimate(SEVENTY, phase="prefill", batch=1, context=5000)
    chunk = layout_figures(SEVENTY, prefill, Layout(tp=8))
    scale = 250 / 5000
    extra = (chunk.step_bytes_per_device - chunk.weight_read_bytes_per_device) * scale
    assert loaded.memory_time_s == pytest.approx(
        (decode.figures.step_bytes_per_device + extra) / 1e12
    )
    scores = chunk.attention_flops_per_device * scale
    matmuls = chunk.step_flops_per_device * scale - scores
    assert matmuls == pytest.approx(2 * 68.45e9 * 250 / 8, rel=0.005)
    assert loaded.compute_time_s == pytest.approx(
        decode.compute_time_s + matmuls / 5e14 + scores / (1e15 * ATTENTION_EFFICIENCY.value)
    )
    assert loaded.memory_time_s > loaded.compute_time_s
    chunk_link = 2 * 80 * 2 * 7 / 8 * 250 * 8192 * 2 / 450e9
    assert loaded.step_time_s == pytest.approx(
        loaded.memory_time_s + decode.communication_time_s + chunk_link + decode.overhead_time_s
    )
    assert loaded.step_time_s > decode.step_time_s
    assert loaded.output_tokens_per_s == pytest.approx(25 / loaded.step_time_s)


def test_only_a_decode_step_can_be_under_load() -> None:
    est = estimate(SEVENTY, phase="prefill", batch=1, context=5000)
    p = predict(SEVENTY, est, X1, HALF, HALF, devices=8)
    with pytest.raises(PredictionError, match="a step under load is a decode step"):
        mixed_step(SEVENTY, p, est, X1, HALF, 5000, 500)
