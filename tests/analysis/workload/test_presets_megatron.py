"""Megatron-LM's benchmark GPTs against the sizes its README's model table names."""

from __future__ import annotations

import pytest

from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import parameters

# The model table's "Model size" column (Megatron-LM README, commit f2e5db402c, 2024-07-15).
NAMED = {
    "megatron-gpt-1.7b": 1.7e9,
    "megatron-gpt-7.1b": 7.1e9,
    "megatron-gpt-16b": 16e9,
    "megatron-gpt-32b": 32e9,
    "megatron-gpt-70b": 70e9,
    "megatron-gpt-119b": 119e9,
    "megatron-gpt-177b": 177e9,
    "megatron-gpt-314b": 314e9,
    "megatron-gpt-462b": 462e9,
}


@pytest.mark.parametrize(("name", "size"), sorted(NAMED.items()))
def test_the_defaults_reproduce_the_named_size(name: str, size: float) -> None:
    """The table rounds loosely (h = 7168 and 48 layers make 48·12·7168² + 2·131,072·7168 =
    31.47B, named 32B; h = 2048 and 24 layers 1.754B with biases and learned positions,
    named 1.7B): within 3.5 %."""
    assert parameters(preset(name)).total == pytest.approx(size, rel=0.035)


def test_the_462b_model_worked_by_hand() -> None:
    """h = 18432, 112 layers, V = 131,072, f = 4h, biases, learned positions, untied.
    A layer: QKV 3h² + 3h, O h² + h, FFN 8h² + 4h + h, two LayerNorms 4h: 12h² + 13h =
    4,076,863,488 + 239,616 = 4,077,103,104; 112 layers 456,635,547,648. The embedding and
    the LM head 2·V·h = 4,831,838,208; positions 4096·h = 75,497,472; final LayerNorm 2h =
    36,864. Total 461,542,920,192."""
    assert parameters(preset("megatron-gpt-462b")).total == 461_542_920_192
