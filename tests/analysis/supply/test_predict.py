"""``predict`` on cases computed by hand.

Accelerator x1: 2e12 B/s, 1e15 bf16 FLOP/s dense, no fp8 peak, 80 GB, 450e9 B/s interconnect.
Efficiencies: bandwidth 0.5, compute 0.5, so usable 1e12 B/s and 5e14 FLOP/s per device; no
step overhead unless a test gives one.

Llama-2-7B decode, batch 1, context 4096, bf16 (``estimate``): the step reads the weights
without the embedding table, 2·(6,738,415,616 − 32,000·4,096) = 13,214,687,232 B, the KV cache
2·32 layers·4096 tokens·32 heads·128·2 B = 2,147,483,648 B, and a few MB of activations and
embedding rows: 15,367,574,528 B in all; 15,361,638,400 FLOPs (about 2 per weight).
- 1 device: memory 15,367,574,528 / 1e12 = 15.3676 ms; compute 15,361,638,400 / 5e14 =
  30.72 us; memory-bound; step 15.3676 ms; 1 / 0.0153676 = 65.07 tokens/s.
- 2 devices (the default layout, tp=2): memory 15,367,574,528 / 2e12 = 7.6838 ms; all-reduce
  per block of 1 token · 4096 · 2 B = 8192 B, ring 2·(2−1)/2 · 8192 / 450e9 = 1.8204e-8 s, two
  per layer, 32 layers: 64 · 1.8204e-8 = 1.16508e-6 s over the link, plus 64 calls · 8 us
  (NVLink's latency per call, x1 being an NVIDIA part) = 512 us; step 7.6838 + 0.00117 + 0.512
  = 8.19697 ms; 121.997 tokens/s per replica, 61.0 per device.
"""

from __future__ import annotations

import pytest

from tasks.analysis.supply.efficiency import Efficiency, Overhead
from tasks.analysis.supply.predict import PredictionError, predict
from tasks.analysis.workload.layout import LayoutError, parse_layout
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate

X1 = {
    "accelerator_id": "x1",
    "vendor": "NVIDIA",
    "mem_bandwidth_bytes_per_s": 2e12,
    "peak_flops_per_s_bf16": 1e15,
    "peak_flops_per_s_fp8": None,
    "memory_bytes": 80e9,
    "interconnect_bandwidth_bytes_per_s": 450e9,
}
HALF = Efficiency(0.5, "test", 0.1)
LLAMA = preset("llama-2-7b")


def test_the_estimate_is_the_bytes_and_flops_the_docstring_adds_up() -> None:
    est = estimate(LLAMA, phase="decode", batch=1, context=4096)
    weights = 2 * (6_738_415_616 - 32_000 * 4_096)
    kv = 2 * 32 * 4096 * 32 * 128 * 2
    assert weights == 13_214_687_232 and kv == 2_147_483_648
    assert est.bytes_per_unit == pytest.approx(15_367_574_528)
    assert est.bytes_per_unit - weights - kv < 10e6
    assert est.flops_per_unit == pytest.approx(15_361_638_400)


def test_one_device_is_memory_bound_at_bytes_over_usable_bandwidth() -> None:
    est = estimate(LLAMA, phase="decode", batch=1, context=4096)
    p = predict(LLAMA, est, X1, HALF, HALF, devices=1)
    assert p.memory_time_s == pytest.approx(15_367_574_528 / 1e12)
    assert p.compute_time_s == pytest.approx(15_361_638_400 / 5e14)
    assert p.communication_time_s == 0
    assert p.bound == "memory"
    assert p.step_time_s == pytest.approx(0.015367574528)
    assert p.tokens_per_s == pytest.approx(65.07, abs=0.01)
    assert p.tokens_per_s_per_device == p.tokens_per_s
    assert p.bandwidth_efficiency.source == "test"


def test_two_devices_split_the_bytes_and_add_the_all_reduces_with_their_latency() -> None:
    est = estimate(LLAMA, phase="decode", batch=1, context=4096)
    p = predict(LLAMA, est, X1, HALF, HALF, devices=2)
    link = 2 * 32 * (2 * (2 - 1) / 2 * 1 * 4096 * 2 / 450e9)
    assert link == pytest.approx(1.16508e-6, rel=1e-5)
    assert str(p.layout) == "tp=2" and "tensor parallel over all 2 devices" in p.layout_reason
    assert p.collectives.calls == 64
    assert p.collectives.bytes_s == pytest.approx(link)
    assert p.collectives.latency_s == pytest.approx(64 * 8e-6)
    assert p.communication_time_s == pytest.approx(link + 512e-6)
    assert p.step_time_s == pytest.approx(15_367_574_528 / 2e12 + link + 512e-6)
    assert p.tokens_per_s == pytest.approx(122.0, abs=0.01)
    assert p.tokens_per_s_per_device == pytest.approx(61.0, abs=0.01)
    assert p.notes == ()
    assert p.as_json()["link_source"].startswith("NVLink/NVSwitch: 8 us per call")


def test_without_interconnect_bandwidth_communication_is_left_out_and_said() -> None:
    est = estimate(LLAMA, phase="decode", batch=1, context=4096)
    p = predict(LLAMA, est, {**X1, "interconnect_bandwidth_bytes_per_s": None}, HALF, HALF, 2)
    assert p.communication_time_s == 0
    assert any("no interconnect bandwidth" in n for n in p.notes)


def test_a_model_too_large_for_the_devices_is_noted() -> None:
    est = estimate(preset("llama-3.1-70b"), phase="decode", batch=1, context=4096)
    p = predict(preset("llama-3.1-70b"), est, X1, HALF, HALF, devices=1)
    assert any(
        "per device under tp=1 does not fit x1" in n and "needs 2 devices" in n for n in p.notes
    )


def test_prefill_counts_every_prompt_token_and_is_compute_bound() -> None:
    # Prefill of 8 prompts of 4096 tokens: 32,768 tokens in the step; ~2·6.6e9 FLOPs each.
    est = estimate(LLAMA, phase="prefill", batch=8, context=4096)
    p = predict(LLAMA, est, X1, HALF, HALF, devices=1)
    assert p.bound == "compute"
    assert p.compute_time_s == pytest.approx(est.flops_per_unit * 32_768 / 5e14)
    assert p.tokens_per_s == pytest.approx(32_768 / p.step_time_s)


def test_a_precision_without_a_peak_is_an_error_naming_what_the_device_has() -> None:
    est = estimate(LLAMA, phase="decode", batch=1, context=4096, weights="fp8", activations="fp8")
    with pytest.raises(PredictionError, match=r"no dense fp8 peak.*it has bf16"):
        predict(LLAMA, est, X1, HALF, HALF)


def test_decode_pays_the_step_overhead_once_per_layer() -> None:
    # 50 us per layer, 32 layers: 1.6 ms on top of the 15.3676 ms memory time; batch 1, so
    # 1 / 0.0169676 = 58.94 tokens/s instead of 65.07.
    est = estimate(LLAMA, phase="decode", batch=1, context=4096)
    p = predict(LLAMA, est, X1, HALF, HALF, 1, Overhead(50e-6, "fitted on 3 runs"))
    assert p.overhead_time_s == pytest.approx(1.6e-3)
    assert p.step_time_s == pytest.approx(0.015367574528 + 1.6e-3)
    assert p.tokens_per_s == pytest.approx(58.94, abs=0.01)
    assert p.as_json()["overhead_source"] == "fitted on 3 runs"


def test_prefill_pays_the_overhead_per_layer_and_training_none() -> None:
    # 0.25 ms per layer: a prefill step of the preset's layers pays layers x 0.25 ms.
    prefill = estimate(LLAMA, phase="prefill", batch=8, context=4096)
    without = predict(LLAMA, prefill, X1, HALF, HALF)
    with_overhead = predict(LLAMA, prefill, X1, HALF, HALF, 1, Overhead(0.25e-3, "fit"))
    added = with_overhead.step_time_s - without.step_time_s
    assert added == pytest.approx(LLAMA.layers * 0.25e-3)
    training = estimate(LLAMA, phase="training", batch=8, context=4096)
    assert predict(LLAMA, training, X1, HALF, HALF, 1, Overhead(0.02, "fit")).overhead_time_s == 0


def test_a_layout_that_does_not_divide_the_heads_lists_the_valid_ones() -> None:
    """Llama 3.1 70B: 64 query and 8 KV heads, 80 layers. Over 3 devices no engine can split it
    (3 divides neither the heads nor the 80 layers); over 16 each device takes 4 query heads
    and a copy of one KV head (KV replicated, as vLLM does), which is valid."""
    seventy = preset("llama-3.1-70b")
    est = estimate(seventy, phase="decode", batch=1, context=4096)
    assert predict(seventy, est, X1, HALF, HALF, devices=16).devices == 16
    with pytest.raises(LayoutError) as caught:
        predict(seventy, est, X1, HALF, HALF, devices=3)
    assert str(caught.value) == (
        "llama-3.1-70b cannot be served as tp=3 on 3 devices: tp=3 does not divide its 64 "
        "query heads; tp=3 neither divides nor is a multiple of its 8 KV heads; its FFN width "
        "28672 does not split over 3 devices; valid layouts for 3 devices: none; tensor-parallel "
        "device counts: 1, 2, 4, 8, 16, 32, 64"
    )
    with pytest.raises(LayoutError) as caught:
        predict(seventy, est, X1, HALF, HALF, devices=4, layout=parse_layout("tp=8"))
    assert str(caught.value) == (
        "llama-3.1-70b cannot be served as tp=8 on 4 devices: it spans 8 devices, not 4; valid "
        "layouts for 4 devices: tp=4 | tp=2,dp_attention=2 | dp_attention=4 | tp=2,pp=2 | "
        "dp_attention=2,pp=2 | pp=4"
    )


def test_prefill_attention_runs_at_its_own_efficiency() -> None:
    """Llama-2-7B prefill of one 8192-token prompt: its attention pairs are 32 layers · 8192 ·
    (8192 + 1)/2 keys on average · 2·32·(128+128) = 16,384 FLOPs per pair and layer:
    262,144 · 4096.5 · 16,384 = 1.7594e13 FLOPs, against ~1.1e14 for its matmuls. At a
    matmul efficiency of 0.25 and attention's own 0.5 on x1's 1e15 FLOP/s, compute time =
    matmuls / 2.5e14 + attention / 5e14."""
    est = estimate(LLAMA, phase="prefill", batch=1, context=8192)
    quarter = Efficiency(0.25, "test", 0.1)
    p = predict(LLAMA, est, X1, HALF, quarter)
    scores = 32 * 8192 * (8192 + 1) / 2 * 2 * 32 * 256
    assert scores == pytest.approx(1.7594e13, rel=1e-4)
    assert p.figures.attention_flops_per_device == pytest.approx(scores)
    total = est.flops_per_unit * 8192
    assert p.attention_time_s == pytest.approx(scores / 5e14)
    assert p.compute_time_s == pytest.approx((total - scores) / 2.5e14 + scores / 5e14)
