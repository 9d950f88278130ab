"""The pipeline as Llama 3 and Megatron-LM run it, worked by hand: uneven chunks, the
activations the first rank holds, and point-to-point traffic hidden by the interleaved
schedule."""

from __future__ import annotations

import pytest

from tasks.analysis.supply.efficiency import Efficiency
from tasks.analysis.training.layout import (
    Layout,
    LayoutError,
    TrainingRun,
    check_run,
    chunk_layers,
    rank_layers,
    stage_layers,
)
from tasks.analysis.training.memory import (
    layer_activation_bytes,
    layers_in_flight,
    memory_per_device,
)
from tasks.analysis.training.network import Network
from tasks.analysis.training.step_time import Device, step_time
from tasks.analysis.workload.presets import preset

FULL = Efficiency(1.0, "test: the spec peak", 0.0)
H100 = Device("h100-like", 80e9, 3.35e12, 989.5e12, 989.5e12)
FABRIC = Network(900e9, 50e9, 8, "test fabric")


def _llama3(dp: int, vp: int) -> TrainingRun:
    """Llama 3 405B as Table 4 of arXiv 2407.21783 lays it out: tp 8, pp 16, 16M tokens of
    8192-token sequences (2048 sequences), one sequence per micro-batch."""
    return TrainingRun(
        Layout(dp=dp, tp=8, pp=16, vp=vp),
        global_batch=2048,
        sequence=8192,
        micro_batch=1,
        zero=1,
        recompute="none",
        optimizer="adam-fp32-grads",
        uneven_stages=True,
    )


def test_llama3_chunks_leave_the_first_and_last_with_no_layer() -> None:
    """126 layers in 16·8 = 128 chunks of ⌈126/128⌉ = 1: two short, taken from the first
    chunk (the embedding alone) and the last (the output alone). Rank 0 runs chunks 0, 16,
    ..., 112: 0 + 7·1 = 7 layers; rank 15 chunks 15, ..., 127: 7; the others 8, the pace.
    With vp = 2: 32 chunks of ⌈126/32⌉ = 4, the first and last 3; rank 0 has 3 + 4 = 7."""
    arch = preset("llama-3.1-405b")
    run = _llama3(64, 8)
    check_run(arch, run, 8192)
    chunks = chunk_layers(arch, run)
    assert len(chunks) == 128 and sum(chunks) == 126
    assert chunks[0] == chunks[-1] == 0 and set(chunks[1:-1]) == {1}
    assert rank_layers(arch, run, 0) == [0, 1, 1, 1, 1, 1, 1, 1]
    assert sum(rank_layers(arch, run, 15)) == 7 and sum(rank_layers(arch, run, 1)) == 8
    assert stage_layers(arch, run) == 8
    assert rank_layers(arch, _llama3(64, 2), 0) == [3, 4]


def test_more_chunks_than_layers_and_two_is_refused() -> None:
    """pp·vp may exceed the 126 layers by the two edge chunks, no more: 16·8 = 128 passes,
    8·17 = 136 does not."""
    arch = preset("llama-3.1-405b")
    too_many = TrainingRun(Layout(dp=128, tp=8, pp=8, vp=17), 2048, 8192, uneven_stages=True)
    with pytest.raises(LayoutError, match="pp·vp = 136 does not divide"):
        check_run(arch, too_many, 8192)


def test_layers_in_flight_on_even_stages_is_korthikantis_count() -> None:
    """GPT-3 175B (96 layers) at pp = 8 with 64 micro-batches: 1F1B holds p = 8 micro-batches
    of 12 layers, L = 96; interleaved by 2 (16 chunks of 6), Megatron's warm-up is
    2·(8−1) + (2−1)·8 = 22 chunks, 23 in flight at the first backward, 23·6 = 138 =
    96·(1 + 7/16) (Korthikanti et al. 2022, section 4.2.3). With 4 micro-batches (fewer than
    p) 1F1B holds all 4: 48."""
    arch = preset("gpt-3-175b")
    plain = TrainingRun(Layout(dp=1, tp=8, pp=8), global_batch=64, sequence=2048)
    interleaved = TrainingRun(Layout(dp=1, tp=8, pp=8, vp=2), global_batch=64, sequence=2048)
    few = TrainingRun(Layout(dp=1, tp=8, pp=8), global_batch=4, sequence=2048)
    assert layers_in_flight(arch, plain) == 96
    assert layers_in_flight(arch, interleaved) == pytest.approx(96 * (1 + 7 / 16))
    assert layers_in_flight(arch, few) == 48


def test_llama3_405b_first_rank_holds_112_layer_micro_batches() -> None:
    """8,192 GPUs (dp 64): 32 micro-batches per step, vp = 8. Warm-up 2·15 + 7·16 = 142
    forward chunks, the 143rd before the first backward: chunks 0..7 sixteen times each (k
    = 0..127) and chunk 0 fifteen more. Chunk 0 holds no layer, chunks 1..7 one each: 7·16 =
    112 layer-micro-batches; each later step adds a chunk-0 (empty) or a one-layer forward
    only after a one-layer backward leaves, so 112 is the peak. 16,384 GPUs (dp 128): 16
    micro-batches = p, Megatron runs every forward first: 16 · 7 = 112 as well.

    One layer's activations per micro-batch (tp 8 with sequence parallelism, no dropout,
    SwiGLU f = 53248, GQA 8 KV heads of 128, FlashAttention): per token 2h + 2h + 2·(h +
    2048) + 2h + 2h + 2h + 2·2f + 2f = 10h + 2h + 4096 + 6f = 12·16384 + 4096 + 319,488 =
    520,192 B, over tp 8 and times 8192 tokens: 532,676,608 B; 112 of them 59,659,780,096 B
    (55.6 GiB), against 188 layers' worth under Korthikanti's formula at the vp = 2 memwall
    used to read."""
    arch = preset("llama-3.1-405b")
    for run in (_llama3(64, 8), _llama3(128, 8)):
        assert layers_in_flight(arch, run) == 112
        assert layer_activation_bytes(arch, run) == 532_676_608
        assert memory_per_device(arch, run).activations == 112 * 532_676_608


def test_interleaved_pipeline_sends_hide_behind_the_micro_batch() -> None:
    """GPT-3 175B at tp 8, pp 8 on 64 devices (the pipeline group spans nodes: 50 GB/s), 64
    micro-batches of one 2048-token sequence. A micro-batch's activations are 2048·12288·2 =
    50,331,648 B, 6,291,456 B per tensor-parallel link; 1F1B sends them forward and their
    gradients back, blocking: 2·6,291,456 / 50e9 = 251.66 µs per micro-batch, 16.106 ms per
    step. Interleaved by 2 the four sends (2·v) take 503.3 µs, far less than a micro-batch's
    matmuls (about 6·175e9·2048/64 devices at 989.5 TFLOP/s = 34 ms): none shows."""
    arch = preset("gpt-3-175b")
    plain = TrainingRun(Layout(dp=1, tp=8, pp=8), global_batch=64, sequence=2048)
    interleaved = TrainingRun(Layout(dp=1, tp=8, pp=8, vp=2), global_batch=64, sequence=2048)
    blocking = step_time(arch, plain, H100, FABRIC, FULL, FULL)
    overlapped = step_time(arch, interleaved, H100, FABRIC, FULL, FULL)
    assert blocking.parts["pipeline_p2p"] == pytest.approx(64 * 2 * 6_291_456 / 50e9)
    assert overlapped.parts["pipeline_p2p"] == 0.0
    # Hidden, it still counts as communication: 64·4·6,291,456 / 50e9 = 32.2 ms of it.
    assert overlapped.communication_s >= 64 * 4 * 6_291_456 / 50e9
