"""The workload model against public worked examples, with the arithmetic written out."""

from __future__ import annotations

import dataclasses

import pytest

from hardware_profiles.schema import GB, MiB
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import (
    COMPONENTS,
    Architecture,
    WorkloadModelError,
    estimate,
    expected_distinct_experts,
    matmul_cost,
)

# --- Llama-2-7B q_proj (LLM-Viewer's worked example) -------------------------------------


def test_llama2_7b_q_proj_prefill_2048_fp16() -> None:
    arch = preset("llama-2-7b")
    q_out = arch.heads * arch.head_dim  # 32 · 128 = 4096
    cost = matmul_cost(2048, arch.hidden, q_out, b_w=2, b_a=2)
    # FLOPs: 2 · 2048 · 4096 · 4096 = 68,719,476,736
    assert cost.flops == 2 * 2048 * 4096 * 4096
    assert cost.flops / 1e9 == pytest.approx(68.7, abs=0.05)
    # Bytes: weights 4096·4096·2 = 33,554,432 + input 2048·4096·2 = 16,777,216
    #        + output 2048·4096·2 = 16,777,216 = 67,108,864
    assert cost.bytes == 4096 * 4096 * 2 + 2048 * 4096 * 2 + 2048 * 4096 * 2
    assert cost.bytes / 1e6 == pytest.approx(67.1, abs=0.05)
    # Intensity 68,719,476,736 / 67,108,864 = 1024
    assert cost.intensity == pytest.approx(1024)


def test_llama2_7b_q_proj_decode_intensity_is_about_one() -> None:
    # One token: 2·4096·4096 FLOPs over 4096·4096·2 + (4096 + 4096)·2 bytes = 0.9995.
    cost = matmul_cost(1, 4096, 4096, b_w=2, b_a=2)
    assert cost.intensity == pytest.approx(2 * 4096 * 4096 / (4096 * 4096 * 2 + 8192 * 2))
    assert cost.intensity == pytest.approx(1.0, abs=0.001)


# --- a 52B dense model (Kipply's "Transformer inference arithmetic") ----------------------

DENSE_52B = Architecture(
    name="dense-52b",
    layers=64,
    hidden=8192,
    heads=64,
    kv_heads=64,
    head_dim=128,
    ffn=4 * 8192,
    vocab=50257,
    max_context=8192,
    gated_ffn=False,
    tied_embeddings=True,
)


def test_52b_kv_cache_is_2_mib_per_token() -> None:
    # 2 (K and V) · 64 layers · 8192 (64 heads · 128) · 2 bytes = 2,097,152 = 2 MiB
    e = estimate(DENSE_52B, phase="decode", batch=1, context=1, weights="fp16")
    assert e.kv_bytes_per_token == 2 * 64 * 8192 * 2 == 2 * MiB


def test_52b_weight_read_floor_on_four_a100s() -> None:
    e = estimate(DENSE_52B, phase="decode", batch=1, context=1, weights="fp16")
    # 12·L·h² = 12 · 64 · 8192² = 51.54e9 in the blocks + 50257 · 8192 = 0.41e9 tied
    # embedding/LM head ≈ 52e9 parameters, read once per token at 2 bytes: 103.9e9 bytes.
    assert e.parameters_total == pytest.approx(52e9, rel=0.002)
    weight_bytes = e.components["weights"].bytes + e.components["lm_head"].bytes
    assert weight_bytes == pytest.approx(2 * 52e9, rel=0.002)
    # Floor: 2 · 52e9 bytes / (4 · 1.5e12 bytes/s) = 17.3 ms per token.
    floor_s = 2 * 52e9 / (4 * 1.5e12)
    assert floor_s == pytest.approx(17.3e-3, abs=0.05e-3)
    assert weight_bytes / (4 * 1.5e12) == pytest.approx(17.3e-3, abs=0.05e-3)


# --- MoE: distinct experts touched ---------------------------------------------------------


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        (1, 8.0),  # 256 · (1 − (31/32)^1)  = 256 · 0.03125 = 8
        (4, 30.5),  # 256 · (1 − (31/32)^4)  = 256 · 0.1194 = 30.56
        (16, 102),  # 256 · (1 − (31/32)^16) = 256 · 0.3980 = 101.9
        (64, 222),  # 256 · (1 − (31/32)^64) = 256 · 0.8687 = 222.4
    ],
)
def test_distinct_experts_256_top8_uniform(batch: int, expected: float) -> None:
    assert expected_distinct_experts(256, 8, batch) == pytest.approx(expected, abs=0.5)


def test_moe_decode_reads_only_the_experts_touched() -> None:
    arch = preset("deepseek-v3")
    one = estimate(arch, phase="decode", batch=1, context=1024, weights="fp8")
    assert one.distinct_experts_per_layer == pytest.approx(8.0)
    # 58 MoE layers · 8 of 256 experts read: far less than all 671e9 parameters.
    weights_read = one.components["weights"].bytes + one.components["lm_head"].bytes
    assert weights_read < 0.1 * one.weight_bytes
    # fp8 blocks cost a byte per active parameter; the LM head (129280 x 7168) ships in bf16,
    # a second byte for each of its parameters.
    assert weights_read == pytest.approx(one.parameters_active + 129280 * 7168, rel=0.01)
    # At batch 64 the step reads 222 of 256 experts, but per token far less than at batch 1.
    wide = estimate(arch, phase="decode", batch=64, context=1024, weights="fp8")
    assert wide.distinct_experts_per_layer == pytest.approx(222.4, abs=0.1)
    expert = 3 * 7168 * 2048  # gate, up and down of one expert
    non_expert = wide.parameters_total - 2 * 129280 * 7168 - 58 * 256 * expert
    step = non_expert + 58 * expert * wide.distinct_experts_per_layer + 64 * 7168
    assert wide.components["weights"].bytes == pytest.approx(step / 64)
    assert wide.components["weights"].bytes < one.components["weights"].bytes / 3


# --- KV heads, not query heads -------------------------------------------------------------


def test_llama31_8b_kv_cache_uses_kv_heads() -> None:
    arch = preset("llama-3.1-8b")
    e = estimate(arch, phase="decode", batch=1, context=1, weights="bf16")
    # 2 · 32 layers · 8 KV heads · 128 · 2 bytes = 131,072 bytes per token.
    assert e.kv_bytes_per_token == 2 * 32 * 8 * 128 * 2 == 131_072
    # With the 32 query heads (the common mistake) it would be 4x that: 524,288.
    mistaken = dataclasses.replace(arch, kv_heads=arch.heads)
    wrong = estimate(mistaken, phase="decode", batch=1, context=1, weights="bf16")
    assert wrong.kv_bytes_per_token == 4 * e.kv_bytes_per_token


def test_mla_caches_the_latent() -> None:
    # DeepSeek-V3: 61 layers · (512 latent + 64 RoPE) · 1 byte (fp8) = 35,136 bytes per token.
    e = estimate(preset("deepseek-v3"), phase="decode", batch=1, context=8, kv="fp8")
    assert e.kv_bytes_per_token == 61 * (512 + 64) * 1


def test_sliding_window_layers_cap_the_cache() -> None:
    # Gemma 2 27B at 8192 tokens: 23 global layers keep 8192, 23 local ones 4096 tokens;
    # 2 · 16 KV heads · 128 · 2 bytes = 8192 bytes per token per layer.
    e = estimate(preset("gemma-2-27b"), phase="decode", batch=1, context=8192)
    assert e.kv_cache_bytes == (23 * 8192 + 23 * 4096) * 8192
    assert e.components["kv_read"].bytes == e.kv_cache_bytes


# --- decode, prefill, training --------------------------------------------------------------


def test_decode_follows_the_design_formula() -> None:
    arch = preset("llama-3.1-70b")
    b, t = 32, 4096
    e = estimate(arch, phase="decode", batch=b, context=t)
    params = e.parameters_active  # LM head included, embedding (a gather) not
    # FLOPs per token ≈ 2·P_act + 4·L·T·H_q·d_h
    assert e.flops_per_unit == pytest.approx(2 * params + 4 * 80 * t * 64 * 128, rel=1e-9)
    # KV per token read: T · KV_tok; written: KV_tok.
    assert e.components["kv_read"].bytes == t * 327_680
    assert e.components["kv_write"].bytes == 327_680
    # Weights once per step, shared by the batch.
    weights = e.components["weights"].bytes + e.components["lm_head"].bytes
    assert weights == pytest.approx(2 * (70.55e9 - 128256 * 8192) / b, rel=1e-3)
    assert set(e.components) == set(COMPONENTS)
    assert e.unit == "token"


def test_lower_weight_precision_halves_weight_traffic_only() -> None:
    arch = preset("llama-3.1-8b")
    bf16 = estimate(arch, phase="decode", batch=4, context=8192)
    fp8 = estimate(arch, phase="decode", batch=4, context=8192, weights="fp8", kv="bf16")
    assert fp8.components["weights"].bytes == pytest.approx(
        bf16.components["weights"].bytes / 2, rel=1e-3
    )
    assert fp8.components["kv_read"].bytes == bf16.components["kv_read"].bytes
    assert fp8.flops_per_unit == bf16.flops_per_unit
    int4 = estimate(arch, phase="decode", batch=4, context=8192, weights="int4")
    assert int4.kv == "bf16"


def test_prefill_is_compute_bound_and_writes_the_cache() -> None:
    e = estimate(preset("llama-3.1-8b"), phase="prefill", batch=4, context=4096)
    assert e.arithmetic_intensity > 1000
    assert e.components["kv_write"].bytes == 131_072
    assert e.components["kv_read"].bytes == 0
    # Attention: 4 · Σ_layers (S+1)/2 keys · H_q · d_h per prompt token.
    assert e.components["attention"].flops == pytest.approx(4 * 32 * (4096 + 1) / 2 * 32 * 128)


def test_training_step_is_six_p_n_and_moves_optimizer_state() -> None:
    arch = preset("llama-3.1-8b")
    e = estimate(arch, phase="training", batch=128, context=4096)
    n = 128 * 4096
    matmuls = e.components["weights"].flops + e.components["lm_head"].flops
    assert matmuls == pytest.approx(6 * e.parameters_active * n, rel=1e-9)
    # ZeRO mixed precision: (2 grads + 12 fp32 state) · 2 + 2 new weights = 34 bytes/param.
    assert e.components["optimizer_state"].bytes == pytest.approx(
        (2 * 2 + 2 * 12 + 2) * e.parameters_total
    )
    assert e.unit == "step"
    recomputed = estimate(arch, phase="training", batch=128, context=4096, recompute=True)
    assert recomputed.components["weights"].flops == pytest.approx(
        e.components["weights"].flops * 8 / 6
    )
    assert recomputed.memory_footprint_bytes < e.memory_footprint_bytes


def test_memory_footprint_and_devices_needed() -> None:
    e = estimate(preset("llama-3.1-70b"), phase="decode", batch=32, context=4096)
    # 141.1 GB of weights + 32 · 4096 · 327,680 = 42.9 GB of cache, plus a small workspace.
    assert e.memory_footprint_bytes == pytest.approx(141.1e9 + 42.95e9, rel=0.01)
    assert e.devices_needed(80 * GB) == 3  # 184 GB / (0.9 · 80 GB) = 2.56
    assert not e.fits(80 * GB, devices=2)
    assert e.fits(141 * GB, devices=2)


def test_context_beyond_the_model_warns() -> None:
    e = estimate(preset("llama-2-7b"), phase="decode", context=8192)
    assert e.warnings and "exceeds llama-2-7b's maximum of 4096" in e.warnings[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"phase": "decode", "batch": 0}, "batch must be > 0, got 0"),
        ({"phase": "decode", "batch": -3}, "batch must be > 0, got -3"),
        ({"phase": "decode", "context": 0}, "context must be > 0"),
        ({"phase": "finetune"}, "unknown phase 'finetune'; valid: decode, prefill, training"),
        (
            {"phase": "decode", "weights": "fp3"},
            "unknown precision 'fp3'; valid: fp32, tf32, bf16, fp16, fp8, fp6, fp4, int8, int4",
        ),
        ({"phase": "decode", "kv": "nvfp4"}, "unknown precision 'nvfp4'; valid: fp32"),
    ],
)
def test_bad_arguments_are_clear(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(WorkloadModelError, match=message):
        estimate(preset("llama-2-7b"), **kwargs)  # type: ignore[arg-type]
