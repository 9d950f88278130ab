"""Recompute policies: what each stores per layer and what it runs again (torchtitan's
per-layer and per-op selective checkpointing beside Megatron's none / selective / full)."""

from __future__ import annotations

import pytest

from hardware_profiles.layouts import RECOMPUTE_POLICIES as NAMES
from tasks.analysis.training.layout import RECOMPUTE_POLICIES, Layout, TrainingRun
from tasks.analysis.training.memory import layer_activation_bytes
from tasks.analysis.training.step_time import step_flops
from tasks.analysis.workload.presets import preset

LLAMA_2_13B = preset("llama-2-13b")


def _run(recompute: str) -> TrainingRun:
    return TrainingRun(Layout(dp=8), global_batch=8, sequence=4096, recompute=recompute)


def test_every_policy_a_file_may_name_has_its_costs() -> None:
    assert tuple(RECOMPUTE_POLICIES) == NAMES


def test_stored_bytes_per_layer_by_policy() -> None:
    """Llama 2 13B (h = 5120, 40 heads of 128, no GQA, gated FFN of 13,824), bf16, one
    sequence of 4,096 tokens, no tensor parallelism. Per token:

    none: attention 2h + 2h + 2·(q + k + v) + 2·40·128 = 10,240 + 10,240 + 30,720 + 10,240
    = 61,440; norm 2 in 2h = 10,240; FFN 2h + 2·f·2 + 2·f = 10,240 + 55,296 + 27,648 =
    93,184; no dropout: 164,864.
    full: the layer's input, 2h = 10,240.
    selective-layer (every second layer whole): (164,864 + 10,240) / 2 = 87,552.
    selective-op (input, Q and V out, attention out, gate out, down out):
    2·(5,120 + 5,120 + 5,120 + 5,120) + 2·(13,824 + 5,120) = 40,960 + 37,888 = 78,848."""
    tokens = 4096
    expected = {"none": 164_864, "full": 10_240, "selective-layer": 87_552, "selective-op": 78_848}
    for name, per_token in expected.items():
        assert layer_activation_bytes(LLAMA_2_13B, _run(name)) == pytest.approx(per_token * tokens)


def test_what_each_policy_runs_again() -> None:
    """Recomputed FLOPs as shares of the forward: none nothing, selective attention's
    forward, full both forwards, selective-layer half of both, selective-op half the weight
    matmuls and no attention (its output is saved)."""
    base = step_flops(LLAMA_2_13B, _run("none"))
    matmul_forward, attention_forward = base.matmul / 3, base.attention / 3
    shares = {
        "none": (0.0, 0.0),
        "selective": (0.0, 1.0),
        "full": (1.0, 1.0),
        "selective-layer": (0.5, 0.5),
        "selective-op": (0.5, 0.0),
    }
    for name, (matmul, attention) in shares.items():
        flops = step_flops(LLAMA_2_13B, _run(name))
        assert flops.recompute_matmul == pytest.approx(matmul * matmul_forward)
        assert flops.recompute_attention == pytest.approx(attention * attention_forward)
