"""Presets of the GPT models NVIDIA measured Megatron-LM's training speed on, so that the
published runs of those measurements can be predicted.

Megatron-LM README at commit f2e5db402c44ae309aa6448bcb4ae87e8ae0f5f4 (2024-07-15, "New
scaling figures on H100 GPUs"), section "Training Speed and Scalability": "All models use a
vocabulary size of 131,072 and a sequence length of 4096"; attention heads, hidden size and
layers are the columns of its model table (``images/model_table.png``). The table does not
state the FFN width, the tying of embeddings or the biases: Megatron-LM's GPT defaults (an
FFN of 4·h with GeLU, LayerNorm, biased linears, output weights untied from the embedding,
learned positions) are taken, and they reproduce the sizes the table names within its
rounding (the tests check each).
"""

from __future__ import annotations

from typing import Final

from tasks.analysis.workload.architecture import Architecture

_SOURCE: Final = (
    "Megatron-LM README model table (commit f2e5db402c, 2024-07-15): heads, hidden, layers; "
    "vocabulary 131,072, sequence 4096; Megatron GPT defaults for the rest"
)


def _megatron_gpt(size: str, heads: int, hidden: int, layers: int) -> Architecture:
    return Architecture(
        name=f"megatron-gpt-{size}",
        source=_SOURCE,
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=heads,
        head_dim=hidden // heads,
        ffn=4 * hidden,
        vocab=131072,
        max_context=4096,
        gated_ffn=False,
        linear_bias=True,
        norm_bias=True,
        learned_positions=4096,
    )


# (name as the table gives it, attention heads, hidden size, layers)
MEGATRON_GPT: Final[tuple[Architecture, ...]] = tuple(
    _megatron_gpt(*row)
    for row in (
        ("1.7b", 16, 2048, 24),
        ("7.1b", 32, 4096, 30),
        ("16b", 48, 6144, 32),
        ("32b", 56, 7168, 48),
        ("70b", 64, 8192, 84),
        ("119b", 80, 10240, 92),
        ("177b", 96, 12288, 96),
        ("314b", 128, 16384, 96),
        ("462b", 144, 18432, 112),
    )
)
