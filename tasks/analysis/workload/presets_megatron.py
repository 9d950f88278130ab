"""Presets of the GPT models NVIDIA measured Megatron-LM's training speed on, so that the
published runs of those measurements can be predicted.

**2021, A100** (:data:`MEGATRON_2021_GPT`): Narayanan et al. 2021, "Efficient Large-Scale
Language Model Training on GPU Clusters Using Megatron-LM" (arXiv 2104.04473), section 5.1
and Table 1: attention heads, hidden size and layers per model; "All models use a
vocabulary size (denoted by V) of 51,200 ... and a sequence length (s) of 2048"; equation (2)
counts ``P = 12lh²(1 + 13/(12h) + (V+s)/(12lh))``: biased linears and LayerNorms (13h a
layer), one V·h embedding shared with the output layer and learned positions, as the presets
below (which add the final LayerNorm's 2h).

**2024, H100** (:data:`MEGATRON_GPT`): Megatron-LM README at commit
f2e5db402c44ae309aa6448bcb4ae87e8ae0f5f4 (2024-07-15, "New scaling figures on H100 GPUs"),
section "Training Speed and Scalability": "All models use a
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
_SOURCE_2021: Final = (
    "Narayanan et al. 2021 (arXiv 2104.04473), Table 1: heads, hidden, layers; vocabulary "
    "51,200, sequence 2048; equation (2): biases, tied embedding, learned positions"
)


def _gpt(
    name: str, source: str, vocab: int, sequence: int, tied: bool, row: tuple[str, int, int, int]
) -> Architecture:
    """A Megatron GPT of one table row (size, heads, hidden, layers): FFN 4·h with GeLU,
    LayerNorm, biased linears, learned positions over the sequence."""
    size, heads, hidden, layers = row
    return Architecture(
        name=f"{name}-{size}",
        source=source,
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=heads,
        head_dim=hidden // heads,
        ffn=4 * hidden,
        vocab=vocab,
        max_context=sequence,
        gated_ffn=False,
        tied_embeddings=tied,
        linear_bias=True,
        norm_bias=True,
        learned_positions=sequence,
    )


# (size as Table 1 gives it, attention heads, hidden size, layers)
MEGATRON_2021_GPT: Final[tuple[Architecture, ...]] = tuple(
    _gpt("megatron-2021-gpt", _SOURCE_2021, 51200, 2048, True, row)
    for row in (
        ("1.7b", 24, 2304, 24),
        ("3.6b", 32, 3072, 30),
        ("7.5b", 32, 4096, 36),
        ("18.4b", 48, 6144, 40),
        ("39.1b", 64, 8192, 48),
        ("76.1b", 80, 10240, 60),
        ("145.6b", 96, 12288, 80),
        ("310.1b", 128, 16384, 96),
        ("529.6b", 128, 20480, 105),
        ("1008b", 160, 25600, 128),
    )
)

# (name as the table gives it, attention heads, hidden size, layers)
MEGATRON_GPT: Final[tuple[Architecture, ...]] = tuple(
    _gpt("megatron-gpt", _SOURCE, 131072, 4096, False, row)
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
