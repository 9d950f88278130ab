"""The bytes a step's kernels move beyond their FLOPs, worked by hand, and what they and
tensor-parallel overlap do to a step."""

from __future__ import annotations

import pytest

from tasks.analysis.supply.efficiency import Efficiency
from tasks.analysis.training.kernels import gemm_bytes, kernel_bytes
from tasks.analysis.training.layout import Layout, TrainingRun
from tasks.analysis.training.network import Network
from tasks.analysis.training.step_time import Device, step_flops, step_time
from tasks.analysis.workload.architecture import Matmul
from tasks.analysis.workload.presets import preset

FULL = Efficiency(1.0, "test: the spec peak", 0.0)
H100 = Device("h100-like", 80e9, 3.35e12, 989.5e12, 989.5e12)
FABRIC = Network(900e9, 50e9, 8, "test fabric")


def test_the_smallest_published_gemm_is_compute_bound_on_a_max_roofline() -> None:
    """The 1.7B model's output projection, M = 4096 tokens, K = N = 2048, bf16: bytes
    2·(4096·2048 + 2048·2048 + 4096·2048) = 41,943,040; FLOPs 2·4096·2048·2048 =
    34,359,738,368: 819.2 FLOP/B, above the H100's 989.5e12 / 3.35e12 = 295 (so a max-roofline
    sees no size effect). Column-parallel at t = 2 halves N: 2·(4096·2048 + 2048·1024) +
    2·4096·1024 = 29,360,128."""
    o = Matmul("o", 2048, 2048)
    assert gemm_bytes(o, 4096, 1, 2.0) == 41_943_040
    assert 2 * 4096 * 2048 * 2048 / gemm_bytes(o, 4096, 1, 2.0) == pytest.approx(819.2)
    assert 2 * 4096 * 2048 * 2048 / gemm_bytes(o, 4096, 1, 2.0) > 989.5e12 / 3.35e12
    assert gemm_bytes(Matmul("qkv", 2048, 2048), 4096, 2, 2.0) == 29_360_128


def test_kernel_bytes_of_llama_3_1_8b_on_one_sequence_of_2048() -> None:
    """Llama 3.1 8B: h = 4096, 32 query / 8 KV heads of 128, f = 14336 (SwiGLU), L = 32,
    V = 128,256; M = 2048 tokens, bf16, t = 1.

    GEMMs, b·(M·K + K·N) + 2·M·N with b = 2: QKV (4096 → 6144) 92,274,688; O (4096 → 4096)
    67,108,864; gate+up (4096 → 28672) 369,098,752; down (14336 → 4096) 192,937,984; a layer
    721,420,288, 32 layers 23,085,449,216; the LM head (4096 → 128256) 1,592,786,944: forward
    24,678,236,160 B.

    Element-wise, elements per token: forward 32·(10·4096 + 3·14336) + 2·4096 = 2,695,168,
    times 2048 tokens and 2 B: 11,039,408,128; backward 32·(12·4096 + 5·14336) + 3·4096 =
    3,878,912: 15,888,023,552. The loss over 2048·128,256 = 262,668,288 logits: 38 B each
    forward, 9,981,394,944; 14 B backward, 3,677,356,032.
    """
    arch = preset("llama-3.1-8b")
    kb = kernel_bytes(arch, TrainingRun(Layout(dp=64), global_batch=64, sequence=2048))
    assert kb.gemm_forward == 24_678_236_160
    assert kb.elementwise_forward == 11_039_408_128
    assert kb.elementwise_backward == 15_888_023_552
    assert kb.loss_forward == 9_981_394_944
    assert kb.loss_backward == 3_677_356_032


def test_a_small_hidden_size_reaches_less_of_the_peak_at_the_same_efficiency() -> None:
    """The README's observation (MFU 41 % at 1.7B, 47-48 % at the largest): at one efficiency,
    one device, no communication, the 1.7B model (h = 2048) reaches less of the peak than
    the 16B one (h = 6144), both below the efficiency itself."""
    mfu = {
        name: step_time(
            preset(name),
            TrainingRun(Layout(dp=1), global_batch=1, sequence=4096, zero=1, recompute="none"),
            H100,
            FABRIC,
            FULL,
            FULL,
        ).mfu
        for name in ("megatron-gpt-1.7b", "megatron-gpt-16b")
    }
    assert mfu["megatron-gpt-1.7b"] < mfu["megatron-gpt-16b"] < 1.0


def test_overlapped_tensor_parallel_traffic_shows_only_beyond_the_gemms() -> None:
    """Llama 3.1 8B at tp = 8, one sequence of 2048 per rank: an all-reduce's volume of
    2048·4096·2 = 16,777,216 B per all-gather + reduce-scatter pair, an all-reduce's volume:
    2·(7/8)·16,777,216 / 900e9 = 32.6 µs, two pairs a layer forward and two backward (the
    model's 4/2 all-reduces), 32 layers: 2.09 ms a micro-batch, below its weight GEMMs (about
    45e9·2048/8/989.5e12 = 11.6 ms), so overlapped it all hides. Over a 10 GB/s link the same
    traffic takes 0.188 s: only what exceeds the GEMMs shows. The traffic itself counts in
    the network pressure either way."""
    arch = preset("llama-3.1-8b")
    plain = TrainingRun(Layout(dp=8, tp=8), global_batch=8, sequence=2048, recompute="none")
    overlapped = TrainingRun(
        Layout(dp=8, tp=8), global_batch=8, sequence=2048, recompute="none", tp_comm_overlap=True
    )
    fast, slow = FABRIC, Network(10e9, 10e9, 8, "test: a slow scale-up link")
    hidden = step_time(arch, overlapped, H100, fast, FULL, FULL)
    shown = step_time(arch, plain, H100, fast, FULL, FULL)
    assert shown.parts["tensor_parallel"] == pytest.approx(64 * 2 * 7 / 8 * 16_777_216 / 900e9)
    assert hidden.parts["tensor_parallel"] == 0.0
    assert hidden.communication_s == pytest.approx(shown.communication_s)
    gemms = (
        step_flops(arch, plain).matmul / 64 / 989.5e12
        + 3 * kernel_bytes(arch, plain).gemm_forward / 3.35e12
    )
    slow_plain = step_time(arch, plain, H100, slow, FULL, FULL).parts["tensor_parallel"]
    slow_hidden = step_time(arch, overlapped, H100, slow, FULL, FULL).parts["tensor_parallel"]
    assert slow_plain == pytest.approx(64 * 2 * 7 / 8 * 16_777_216 / 10e9)
    assert slow_hidden == pytest.approx(slow_plain - gemms)


def test_zero1_gathers_weights_behind_the_next_forward_not_the_last_backward() -> None:
    """Llama 3.1 8B (P = 8,030,261,248), dp = 64 one per node over a 250 GB/s NIC, ZeRO-1,
    16 micro-batches of 2048: the bf16 gradients reduce-scattered, (63/64)·2·P / 250e9 =
    63.24 ms, hide in the last backward (2/3 of a micro-batch's 124.2 ms compute: 82.8 ms);
    the bf16 weights all-gathered, the same 63.24 ms, only behind the next step's first
    forward (1/3: 41.4 ms), so 21.8 ms shows, though the two together (126.5 ms) would fit in
    a whole micro-batch."""
    arch = preset("llama-3.1-8b")
    run = TrainingRun(Layout(dp=64), global_batch=64 * 16, sequence=2048, zero=1)
    nic = Network(900e9, 250e9, 1, "test: one device per node, 250 GB/s")
    result = step_time(arch, run, H100, nic, FULL, FULL)
    gather = 63 / 64 * 2 * 8_030_261_248 / 250e9
    micro = result.compute_s / 16
    assert micro == pytest.approx(0.1242, rel=1e-3)
    assert result.parts["data_parallel"] == pytest.approx(gather - micro / 3)
