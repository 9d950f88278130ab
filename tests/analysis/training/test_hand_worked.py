"""The four acceptance cases of the training model, worked by hand from the published formulas."""

from __future__ import annotations

import pytest

from tasks.analysis.supply.efficiency import Efficiency
from tasks.analysis.training.data_parallel import data_parallel_traffic
from tasks.analysis.training.layout import Layout, TrainingRun
from tasks.analysis.training.memory import memory_per_device, parameter_split
from tasks.analysis.training.network import Network, all_to_all_s, gather_s
from tasks.analysis.training.step_time import Device, bubble_fraction, step_time
from tasks.analysis.workload.presets import preset

FULL: Efficiency = Efficiency(1.0, "test: the spec peak", 0.0)
H100 = Device(
    name="h100-like",
    memory_bytes=80e9,
    hbm_bytes_per_s=3.35e12,
    peak_flops_per_s=989.5e12,
    attention_flops_per_s=989.5e12,
)
# 900 GB/s NVLink inside 8-device nodes, 50 GB/s (400 Gb/s) per device beyond.
FABRIC = Network(900e9, 50e9, 8, "test fabric")
# One device per node: every data-parallel byte crosses the device's own 50 GB/s NIC.
NIC_PER_DEVICE = Network(900e9, 50e9, 1, "test fabric, one device per node")


def test_memory_per_device_of_gpt3_175b_at_tp8_pp8_with_selective_recompute() -> None:
    """GPT-3 175B (Brown et al. 2020, Table 2.1: L = 96, h = 12288, a = 96, s = 2048, V =
    50257, tied embeddings, learned positions, biased linears and LayerNorms) on 64 devices,
    tp = 8, pp = 8, dp = 1, micro-batch 1, global batch 64, bf16 Adam (16 B/param).

    Parameters: a layer is 12·h² + 13·h = 1,811,939,328 + 159,744 = 1,812,099,072; 96 layers
    173,961,510,912; the embedding V·h + 2048·h = 617,558,016 + 25,165,824 = 642,723,840; the
    final LayerNorm 2·h = 24,576. The first stage holds (173,961,510,912 + 24,576)/64 =
    2,718,149,023.25 of the layers' and 642,723,840/8 = 80,340,480 of the embedding's:
    P_dev = 2,798,489,503.25.

    weights 2·P_dev = 5,596,979,006.5 B; gradients the same; optimizer state 12·P_dev =
    33,581,874,039 B (dp = 1: ZeRO shards nothing).

    Activations (Korthikanti et al. 2022, tp + sp + selective): 34·s·b·h/t per layer =
    34·2048·12288/8 = 106,954,752 B; the first stage has L/p = 12 layers and, with m = 64 >=
    p, p = 8 micro-batches in flight: 96 · 106,954,752 = 10,267,656,192 B.

    Total 2·5,596,979,006.5 + 33,581,874,039 + 10,267,656,192 = 55,043,488,244 B (55.0 GB).
    """
    run = TrainingRun(Layout(dp=1, tp=8, pp=8), global_batch=64, sequence=2048)
    memory = memory_per_device(preset("gpt-3-175b"), run)
    assert memory.weights == pytest.approx(5_596_979_006.5)
    assert memory.gradients == pytest.approx(5_596_979_006.5)
    assert memory.optimizer_state == pytest.approx(33_581_874_039)
    assert memory.activations == pytest.approx(10_267_656_192)
    assert memory.total == pytest.approx(55_043_488_244)


def test_activations_follow_the_recompute_policy() -> None:
    """The same GPT-3 layer without recomputation and without FlashAttention adds
    Korthikanti's 5·a·s²·b/t = 5·96·2048²/8 = 251,658,240 B per layer to the 106,954,752;
    full recomputation keeps the layer input, 2·s·b·h/t = 6,291,456 B per layer (96 layers'
    worth in flight: 603,979,776 B) plus one layer being recomputed (106,954,752 B)."""
    arch = preset("gpt-3-175b")
    base = TrainingRun(Layout(dp=1, tp=8, pp=8), global_batch=64, sequence=2048)
    none = TrainingRun(base.layout, 64, 2048, recompute="none", flash_attention=False)
    full = TrainingRun(base.layout, 64, 2048, recompute="full")
    assert memory_per_device(arch, none).activations == pytest.approx(
        96 * (106_954_752 + 251_658_240)
    )
    assert memory_per_device(arch, full).activations == pytest.approx(603_979_776 + 106_954_752)


def test_data_parallel_gradient_bytes_of_llama_70b_on_1024_devices_at_zero1() -> None:
    """Llama 3.1 70B (L = 80, h = 8192, 64 query / 8 KV heads of 128, SwiGLU f = 28672, V =
    128256, untied) on 1,024 devices as dp = 128, tp = 8, ZeRO-1, bf16 gradients.

    A layer: QKV 8192·10240 = 83,886,080, O 8192² = 67,108,864, gate-up 8192·57344 =
    469,762,048, down 28672·8192 = 234,881,024, two norms 16,384: 855,654,400; 80 layers
    68,452,352,000, plus the final norm 8,192. With pp = 1 a device holds the layers /8 =
    8,556,545,024 and the embedding and LM head (2 · 1,050,673,152)/8 = 262,668,288:
    P_dev = 8,819,213,312, so 17,638,426,624 B of bf16 gradients.

    ZeRO-1 reduce-scatters them over g = 128 ranks, (127/128) · 17,638,426,624 =
    17,500,626,315.5 B through each device's link per step, and all-gathers the updated bf16
    weights, the same again: 35,001,252,631 B per device per step.
    """
    run = TrainingRun(Layout(dp=128, tp=8), global_batch=1024, sequence=8192, zero=1)
    traffic = data_parallel_traffic(preset("llama-3.1-70b"), run)
    assert traffic.ranks == 128
    assert traffic.reduce_scatter_bytes == pytest.approx(17_500_626_315.5)
    assert traffic.all_gather_bytes == pytest.approx(17_500_626_315.5)
    assert traffic.total_bytes == pytest.approx(35_001_252_631)


def test_bubble_of_pp16_with_64_micro_batches_interleaved_by_2() -> None:
    """(p−1)/(v·m) = 15/(2·64) = 0.1171875 of the ideal time; the step's bubble part is that
    share of the m micro-batches' time (without interleaving: 15/64, twice as much)."""
    arch = preset("llama-3.1-8b")
    interleaved = TrainingRun(Layout(dp=1, pp=16, vp=2), global_batch=64, sequence=4096)
    plain = TrainingRun(Layout(dp=1, pp=16), global_batch=64, sequence=4096)
    assert interleaved.micro_batches == 64
    assert bubble_fraction(interleaved) == 15 / 128
    assert bubble_fraction(plain) == 15 / 64
    parts = step_time(arch, interleaved, H100, FABRIC, FULL, FULL).parts
    per_micro = (
        parts["matmul"] + parts["recompute"] + parts["hbm"] + parts["tensor_parallel"]
        + parts["context_parallel"] + parts["expert_parallel"] + parts["pipeline_p2p"]
    )  # fmt: skip
    assert parts["pipeline_bubble"] == pytest.approx(per_micro * 15 / 128)


def test_the_network_binds_when_tokens_per_device_fall_below_flops_over_link() -> None:
    """Llama 3.1 8B (P = 8,030,261,248), pure data parallel over 64 devices of one per node
    (the scale-out link, 50 GB/s, carries the whole ring), ZeRO-1, bf16, s = 2048, selective
    recompute, at the spec peak.

    Communication per step: (63/64)·2·P reduce-scattered + (63/64)·2·P gathered =
    31,619,153,664 B / 50 GB/s = 0.63238 s, whatever the batch. Compute per token: 6·P_act,
    the matmuls' parameters (32 layers of 218,103,808 plus the LM head 525,336,576:
    7,504,658,432; the embedding is a gather, the norms no matmul), so 45,027,950,592; plus
    attention 3·2·a·(d_qk + d_v)·s·L = 6·32·256·2048·32 = 3,221,225,472; plus selective's
    attention forward 1,073,741,824: 49,322,917,888 FLOPs, 4.9846e-11 s at 989.5 TFLOP/s.
    The GEMMs' operands add 3 · 24,678,236,160 B per micro-batch of 2,048 tokens at 3.35 TB/s
    (test_kernels: 0.0221 s). Peak FLOP/s over the link is 989.5e12 / 50e9 = 19,790 tokens.

    One sequence per device (2,048 tokens, below 19,790): compute 0.10209 + 0.0221 = 0.1242 s,
    the network pressure 0.63238 / 0.1242 = 5.09: the network binds. Sixteen, accumulated over
    16 micro-batches (32,768 tokens, above): compute 16 · 0.1242 = 1.987 s, pressure 0.318:
    compute binds.
    """
    arch = preset("llama-3.1-8b")
    small = TrainingRun(Layout(dp=64), global_batch=64, sequence=2048, zero=1)
    large = TrainingRun(Layout(dp=64), global_batch=64 * 16, sequence=2048)  # 16 micro-batches
    for run, tokens, wall in ((small, 2048, "network"), (large, 32768, "compute")):
        result = step_time(arch, run, H100, NIC_PER_DEVICE, FULL, FULL)
        assert run.tokens_per_device == tokens
        assert result.communication_s == pytest.approx(31_619_153_664 / 50e9)
        operands = tokens / 2048 * 3 * 24_678_236_160 / 3.35e12
        assert result.compute_s == pytest.approx(tokens * 49_322_917_888 / 989.5e12 + operands)
        assert result.wall == wall
    assert 2048 < 989.5e12 / 50e9 < 32768


def test_collectives_split_between_the_scale_up_and_scale_out_links() -> None:
    """An all-gather of N = 8 GB over 64 ranks: ranks 8 apart (tp = 8 inside them) have one
    member per node, the flat ring over the NIC: (63/64)·8e9 / 50e9 = 0.1575 s. Adjacent
    ranks (stride 1) have k = 8 per node: (7/8)·8e9 / 900e9 over NVLink = 7.778 ms, plus
    (7/8)·(8e9/8) / 50e9 = 17.5 ms over the 8 NICs of each node: 25.28 ms. Eight ranks in
    one node stay on NVLink: (7/8)·8e9 / 900e9. An all-to-all of 8 GB over 16 ranks of
    stride 1: 7/16 stays (k − 1 = 7 peers) at 900 GB/s, 8/16 leaves at 50 GB/s."""
    n = 8e9
    assert gather_s(n, 64, 8, FABRIC) == pytest.approx(63 / 64 * n / 50e9)
    assert gather_s(n, 64, 1, FABRIC) == pytest.approx(7 / 8 * n / 900e9 + 7 / 8 * n / 8 / 50e9)
    assert gather_s(n, 8, 1, FABRIC) == pytest.approx(7 / 8 * n / 900e9)
    assert all_to_all_s(n, 16, 1, FABRIC) == pytest.approx(7 / 16 * n / 900e9 + n / 2 / 50e9)


def test_expert_parallelism_splits_the_experts_and_pays_the_all_to_alls() -> None:
    """Mixtral 8x7B: an expert of a layer is 4096·28672 + 14336·4096 = 176,160,768
    parameters; 8 experts over 32 layers 45,097,156,608, split over ep = 8 ranks:
    5,637,144,576 per device. A micro-batch of one 4,096-token sequence sends each token's
    top-2 copies, 4096·2·4096·2 B = 67,108,864 B, through a dispatch and a combine forward and
    backward (4 all-to-alls) in each of 32 layers; 8 ranks in one NVLink domain keep 7/8 of
    it on the 900 GB/s link: 128 · (7/8) · 67,108,864 / 900e9 = 8.35 ms."""
    arch = preset("mixtral-8x7b")
    run = TrainingRun(Layout(dp=8, ep=8), global_batch=8, sequence=4096, zero=1)
    assert parameter_split(arch, run).experts == pytest.approx(45_097_156_608 / 8)
    parts = step_time(arch, run, H100, FABRIC, FULL, FULL).parts
    assert parts["expert_parallel"] == pytest.approx(128 * 7 / 8 * 67_108_864 / 900e9)


def test_tensor_parallel_all_reduces_per_layer() -> None:
    """Llama 3.1 70B at tp = 8, one 8,192-token sequence: each layer's forward has two
    all-gather + reduce-scatter pairs and its backward two more, each of s·h·2 = 8192·8192·2
    = 134,217,728 B: the volume of two all-reduces, 2 · 2·(7/8)·134,217,728 / 900e9 =
    522 us per layer on NVLink, 41.76 ms over 80 layers; full recomputation repeats the
    forward's pair: 62.64 ms."""
    arch = preset("llama-3.1-70b")
    per_layer = 2 * 2 * 7 / 8 * 134_217_728 / 900e9
    for recompute, pairs in (("selective", 2), ("full", 3)):
        run = TrainingRun(Layout(tp=8), global_batch=1, sequence=8192, recompute=recompute)
        parts = step_time(arch, run, H100, FABRIC, FULL, FULL).parts
        assert parts["tensor_parallel"] == pytest.approx(80 * per_layer * pairs / 2)
