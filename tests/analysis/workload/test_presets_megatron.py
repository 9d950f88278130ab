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


# Narayanan et al. 2021, Table 1: "Number of parameters (billion)".
TABLE_1 = {
    "megatron-2021-gpt-1.7b": 1.7,
    "megatron-2021-gpt-3.6b": 3.6,
    "megatron-2021-gpt-7.5b": 7.5,
    "megatron-2021-gpt-18.4b": 18.4,
    "megatron-2021-gpt-39.1b": 39.1,
    "megatron-2021-gpt-76.1b": 76.1,
    "megatron-2021-gpt-145.6b": 145.6,
    "megatron-2021-gpt-310.1b": 310.1,
    "megatron-2021-gpt-529.6b": 529.6,
    "megatron-2021-gpt-1008b": 1008.0,
}


@pytest.mark.parametrize(("name", "billions"), sorted(TABLE_1.items()))
def test_the_2021_models_match_table_1_to_its_last_digit(name: str, billions: float) -> None:
    """Equation (2), P = 12lh²(1 + 13/(12h) + (V+s)/(12lh)), plus the final LayerNorm's 2h,
    rounds to the table's figure (one decimal: within 0.05 billion)."""
    assert abs(parameters(preset(name)).total / 1e9 - billions) < 0.05


def test_the_1t_model_worked_by_hand() -> None:
    """l = 128, h = 25600, V = 51,200, s = 2048: 12·l·h² = 1,006,632,960,000; 13·l·h =
    42,598,400; (V + s)·h = 1,363,148,800; the final LayerNorm 2h = 51,200. Total
    1,008,038,758,400."""
    assert parameters(preset("megatron-2021-gpt-1008b")).total == 1_008_038_758_400
