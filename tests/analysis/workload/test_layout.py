"""Serving layouts worked by hand.

DeepSeek-V3 (``deepseek-v3`` preset): 61 layers, 3 dense and 58 MoE, hidden 7168, 256 routed
experts, top-8, MLA latent 512 + 64 rope elements per token and layer.
"""

from __future__ import annotations

import math

import pytest

from tasks.analysis.workload.layout import (
    Layout,
    LayoutError,
    check_layout,
    engine_layout,
    parse_layout,
    valid_layouts,
)
from tasks.analysis.workload.layout_figures import expected_busiest_rank, layout_figures
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate

V3 = preset("deepseek-v3")
SEVENTY = preset("llama-3.1-70b")


def test_a_layout_reads_and_prints_as_the_cli_takes_it() -> None:
    layout = parse_layout("dp_attention=8, ep=8")
    assert layout == Layout(dp_attention=8, ep=8)
    assert layout.devices == 8 and layout.stage == 8
    assert str(layout) == "dp_attention=8,ep=8"
    assert str(parse_layout("tp=4,pp=2")) == "tp=4,pp=2" and parse_layout("tp=4,pp=2").devices == 8
    for bad in ("tp8", "tq=8", "tp=0", "tp=2,tp=2", "tp=x"):
        with pytest.raises(LayoutError, match="layout"):
            parse_layout(bad)


def test_the_all_to_all_bytes_of_one_deepseek_v3_decode_step() -> None:
    """dp_attention=8,ep=8, batch 64, bf16 activations (2 B): each MoE layer dispatches
    64 tokens · 7168 · top-8 · 2 B = 7,340,032 B and combines as many back, 14,680,064 B; over
    58 MoE layers 851,443,712 B a step. Calls: 2 all-to-alls per MoE layer (116) and, for
    the 3 dense layers, one all-reduce of the 64 gathered tokens over the 8 devices
    (64 · 7168 · 2 = 917,504 B each); no attention all-reduce (tp = 1)."""
    est = estimate(V3, phase="decode", batch=64, context=4096)
    f = layout_figures(V3, est, parse_layout("dp_attention=8,ep=8"))
    assert 64 * 7168 * 8 * 2 == 7_340_032
    assert f.alltoall_bytes_per_step == 58 * 2 * 7_340_032 == 851_443_712
    kinds = {
        (c.kind, c.group, c.calls, c.message_bytes) for c in f.collectives if c.kind != "all-to-all"
    }
    assert kinds == {("all-reduce", 8, 3, 917_504)}
    (alltoall,) = [c for c in f.collectives if c.kind == "all-to-all"]
    assert alltoall.calls == 116
    # The busiest device receives its mean share (64 · 8 / 8 copies of 14,336 B) scaled by the
    # imbalance, 7/8 of it from other devices.
    assert alltoall.message_bytes == pytest.approx(64 * 14_336 * f.imbalance * 7 / 8)


def test_the_kv_bytes_per_rank_under_attention_data_parallel() -> None:
    """MLA caches 512 + 64 = 576 elements per token and layer, at bf16 1,152 B; over 61 layers
    70,272 B per token. Batch 64 at 4096 tokens over dp_attention=8: each rank holds its 8
    sequences, 8 · 4096 · 70,272 = 2,302,672,896 B. Tensor parallel over 8 splits heads, not
    the latent, so each device holds all 64: 18,421,383,168 B, 8 times as much."""
    est = estimate(V3, phase="decode", batch=64, context=4096)
    dp = layout_figures(V3, est, parse_layout("dp_attention=8,ep=8"))
    tp = layout_figures(V3, est, parse_layout("tp=8"))
    assert 61 * 576 * 2 == 70_272
    assert dp.kv_bytes_per_device == pytest.approx(8 * 4096 * 70_272) == 2_302_672_896
    assert tp.kv_bytes_per_device == pytest.approx(64 * 4096 * 70_272)
    # A batch that does not divide: 4 sequences over 8 ranks leave the busiest with 1.
    small = estimate(V3, phase="decode", batch=4, context=4096)
    assert layout_figures(V3, small, Layout(dp_attention=8, ep=8)).kv_bytes_per_device == (
        pytest.approx(4096 * 70_272)
    )


def test_a_gqa_cache_splits_by_kv_heads_up_to_tp() -> None:
    """Llama 3.1 70B keeps 8 KV heads: at tp=8 each device holds 1/8 of the cache; at tp=16
    it holds a copy of one head, still 1/8."""
    est = estimate(SEVENTY, phase="decode", batch=16, context=2048)
    for tp in (8, 16):
        f = layout_figures(SEVENTY, est, Layout(tp=tp))
        assert f.kv_bytes_per_device == pytest.approx(est.kv_cache_bytes / 8)


def test_the_busiest_expert_rank_s_expected_load() -> None:
    """64 tokens · top-8 = 512 copies over 8 ranks: mean 64, σ = √(512 · 1/8 · 7/8) = √56 =
    7.483. The expected largest of 8 normals is 1.4236 σ (Tippett's tables), so about
    64 + 10.65 = 74.65; the binomial sum Σ_k (1 − F(k)^8) gives 74.8 (discreteness).
    2 copies over 2 ranks: F(0) = 1/4, F(1) = 3/4, so (1 − 1/16) + (1 − 9/16) = 1.375."""
    assert expected_busiest_rank(512, 8) == pytest.approx(64 + math.sqrt(56) * 1.4236, abs=0.3)
    assert expected_busiest_rank(2, 2) == pytest.approx(1.375)
    assert expected_busiest_rank(512, 1) == 512
    est = estimate(V3, phase="decode", batch=64, context=4096)
    f = layout_figures(V3, est, Layout(dp_attention=8, ep=8))
    assert f.expert_load_mean == 64
    assert f.imbalance == pytest.approx(expected_busiest_rank(512, 8) / 64)
    # More tokens even the ranks out: the busiest is within 2 % of the mean at 64k copies.
    assert expected_busiest_rank(65_536, 8) / 8192 < 1.02


def test_tensor_parallel_calls_two_all_reduces_per_layer() -> None:
    """tp=8: one all-reduce after attention and one after the FFN in each of Llama 3.1 70B's
    80 layers: 160 calls a step, 2 per layer; each of one token's 8192 · 2 B = 16,384 B at
    batch 1."""
    est = estimate(SEVENTY, phase="decode", batch=1, context=4096)
    f = layout_figures(SEVENTY, est, Layout(tp=8))
    assert f.calls_per_layer(80) == 2
    assert [(c.kind, c.group, c.calls, c.message_bytes) for c in f.collectives] == [
        ("all-reduce", 8, 80, 16_384),
        ("all-reduce", 8, 80, 16_384),
    ]
    assert f.step_bytes_per_device == pytest.approx(est.bytes_per_unit / 8)


def test_a_layout_that_does_not_divide_is_refused_listing_the_valid_ones() -> None:
    with pytest.raises(LayoutError) as caught:
        check_layout(V3, parse_layout("dp_attention=2,ep=3"))
    assert str(caught.value) == (
        "deepseek-v3 cannot be served as dp_attention=2,ep=3 on 2 devices: ep=3 does not "
        "divide its 256 experts; ep=3 is not the stage's 2 devices (tp x dp_attention); valid "
        "layouts for 2 devices: tp=2 | tp=2,ep=2 | dp_attention=2 | dp_attention=2,ep=2"
    )
    with pytest.raises(LayoutError, match=r"ep=8 on a dense model"):
        check_layout(SEVENTY, Layout(tp=8, ep=8))
    with pytest.raises(LayoutError, match=r"pp=3 does not divide its 80 layers"):
        check_layout(SEVENTY, Layout(tp=2, pp=3))
    assert Layout(dp_attention=8, ep=8) in valid_layouts(V3, 8)


def test_the_engine_default_is_tensor_parallel_and_says_why() -> None:
    layout, why = engine_layout(V3, 8)
    assert layout == Layout(tp=8)
    assert "tensor parallel over all 8 devices" in why and "dp_attention=N,ep=N" in why
    # Llama-2-7B has 32 heads and 32 layers: over 64 devices, tp=32 with 2 pipeline stages.
    layout, why = engine_layout(preset("llama-2-7b"), 64)
    assert layout == Layout(tp=32, pp=2) and "2 pipeline stages" in why
    # Llama 3.1 70B over 48: no tp divides both 64 heads and 48 devices with stages dividing 80.
    with pytest.raises(LayoutError, match="valid layouts for 48 devices"):
        engine_layout(SEVENTY, 48)
