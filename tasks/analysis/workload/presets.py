"""Architectures of well-known open models, so a workload can be described by name.

Figures are copied from each model's published ``config.json`` on the Hugging Face Hub (the
repository is named in ``source``; keys: ``num_hidden_layers``, ``hidden_size``,
``num_attention_heads``, ``num_key_value_heads``, ``head_dim`` (hidden / heads where absent),
``intermediate_size``, ``vocab_size``, ``max_position_embeddings``, ``tie_word_embeddings`` and
the MoE/MLA keys), except GPT-3, which has no config: its figures are the paper's Table 2.1.
The tests check each preset's parameter count against the count its publisher states.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from hardware_profiles.errors import MemwallError
from tasks.analysis.workload.architecture import Architecture
from tasks.analysis.workload.open_models_2025 import OPEN_MODELS_2025
from tasks.analysis.workload.presets_megatron import MEGATRON_2021_GPT, MEGATRON_GPT
from tasks.analysis.workload.workload_model import MODEL_PHASES, Estimate, estimate


class UnknownPresetError(MemwallError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown model preset {name!r}; valid: {', '.join(PRESETS)}")


def _llama(name: str, source: str, **figures: Any) -> Architecture:
    """Llama-family decoders: SwiGLU FFN, RMSNorm before attention and FFN, RoPE."""
    return Architecture(name=name, source=source, head_dim=128, **figures)


PRESETS: Final[dict[str, Architecture]] = {
    a.name: a
    for a in (
        # meta-llama/Llama-2-7b-hf, -13b-hf, -70b-hf config.json.
        _llama(
            "llama-2-7b",
            "meta-llama/Llama-2-7b-hf config.json",
            layers=32,
            hidden=4096,
            heads=32,
            kv_heads=32,
            ffn=11008,
            vocab=32000,
            max_context=4096,
        ),
        _llama(
            "llama-2-13b",
            "meta-llama/Llama-2-13b-hf config.json",
            layers=40,
            hidden=5120,
            heads=40,
            kv_heads=40,
            ffn=13824,
            vocab=32000,
            max_context=4096,
        ),
        _llama(
            "llama-2-70b",
            "meta-llama/Llama-2-70b-hf config.json",
            layers=80,
            hidden=8192,
            heads=64,
            kv_heads=8,
            ffn=28672,
            vocab=32000,
            max_context=4096,
        ),
        # meta-llama/Llama-3.1-8B, -70B, -405B config.json (128k context via rope_scaling).
        _llama(
            "llama-3.1-8b",
            "meta-llama/Llama-3.1-8B config.json",
            layers=32,
            hidden=4096,
            heads=32,
            kv_heads=8,
            ffn=14336,
            vocab=128256,
            max_context=131072,
        ),
        _llama(
            "llama-3.1-70b",
            "meta-llama/Llama-3.1-70B config.json",
            layers=80,
            hidden=8192,
            heads=64,
            kv_heads=8,
            ffn=28672,
            vocab=128256,
            max_context=131072,
        ),
        _llama(
            "llama-3.1-405b",
            "meta-llama/Llama-3.1-405B config.json",
            layers=126,
            hidden=16384,
            heads=128,
            kv_heads=8,
            ffn=53248,
            vocab=128256,
            max_context=131072,
        ),
        # mistralai/Mistral-7B-v0.3 config.json (sliding_window null; v0.1 used 4096).
        _llama(
            "mistral-7b",
            "mistralai/Mistral-7B-v0.3 config.json",
            layers=32,
            hidden=4096,
            heads=32,
            kv_heads=8,
            ffn=14336,
            vocab=32768,
            max_context=32768,
        ),
        # mistralai/Mixtral-8x7B-v0.1 and Mixtral-8x22B-Instruct-v0.1 config.json:
        # num_local_experts 8, num_experts_per_tok 2; every layer is an MoE layer.
        _llama(
            "mixtral-8x7b",
            "mistralai/Mixtral-8x7B-v0.1 config.json",
            layers=32,
            hidden=4096,
            heads=32,
            kv_heads=8,
            ffn=14336,
            expert_ffn=14336,
            experts=8,
            experts_per_token=2,
            vocab=32000,
            max_context=32768,
        ),
        _llama(
            "mixtral-8x22b",
            "mistralai/Mixtral-8x22B-Instruct-v0.1 config.json",
            layers=56,
            hidden=6144,
            heads=48,
            kv_heads=8,
            ffn=16384,
            expert_ffn=16384,
            experts=8,
            experts_per_token=2,
            vocab=32768,
            max_context=65536,
        ),
        # Qwen/Qwen2.5-72B config.json: biases on q, k and v (Qwen2 attention).
        Architecture(
            name="qwen2.5-72b",
            source="Qwen/Qwen2.5-72B config.json",
            layers=80,
            hidden=8192,
            heads=64,
            kv_heads=8,
            head_dim=128,
            ffn=29568,
            vocab=152064,
            max_context=32768,
            qkv_bias=True,
        ),
        # google/gemma-2-27b config.json: head_dim 128, GeGLU, tied embeddings, four RMSNorms
        # per layer, every other layer local with sliding_window 4096.
        Architecture(
            name="gemma-2-27b",
            source="google/gemma-2-27b config.json",
            layers=46,
            hidden=4608,
            heads=32,
            kv_heads=16,
            head_dim=128,
            ffn=36864,
            vocab=256000,
            max_context=8192,
            tied_embeddings=True,
            norms_per_layer=4,
            sliding_window=4096,
            sliding_layers=23,
        ),
        # deepseek-ai/DeepSeek-V3 config.json: MLA (q_lora_rank 1536, kv_lora_rank 512,
        # qk_nope_head_dim 128, qk_rope_head_dim 64, v_head_dim 128); 256 routed experts of
        # moe_intermediate_size 2048, 8 per token, 1 shared; first_k_dense_replace 3 with
        # intermediate_size 18432. The multi-token-prediction module is not counted (671B).
        Architecture(
            name="deepseek-v3",
            source="deepseek-ai/DeepSeek-V3 config.json",
            layers=61,
            hidden=7168,
            heads=128,
            kv_heads=128,
            head_dim=128,
            ffn=18432,
            vocab=129280,
            max_context=163840,
            experts=256,
            experts_per_token=8,
            expert_ffn=2048,
            shared_ffn=2048,
            dense_layers=3,
            q_lora_rank=1536,
            kv_lora_rank=512,
            qk_rope_dim=64,
            v_head_dim=128,
        ),
        # Brown et al. 2020, "Language Models are Few-Shot Learners", Table 2.1: 96 layers,
        # d_model 12288, 96 heads of 128, d_ff = 4·d_model, 2048-token context; GPT-2's
        # 50257-token vocabulary, tied embeddings, learned positions, biased LayerNorm and
        # linear layers.
        Architecture(
            name="gpt-3-175b",
            source="Brown et al. 2020, Table 2.1",
            layers=96,
            hidden=12288,
            heads=96,
            kv_heads=96,
            head_dim=128,
            ffn=49152,
            vocab=50257,
            max_context=2048,
            gated_ffn=False,
            tied_embeddings=True,
            linear_bias=True,
            norm_bias=True,
            learned_positions=2048,
        ),
        *OPEN_MODELS_2025,
        *MEGATRON_GPT,
        *MEGATRON_2021_GPT,
    )
}


def preset(name: str) -> Architecture:
    """The architecture called ``name`` (case-insensitive), or an error listing the valid ones."""
    try:
        return PRESETS[name.strip().lower()]
    except KeyError:
        raise UnknownPresetError(name) from None


def estimate_workload(
    row: Mapping[str, Any],
    *,
    weights: str | None = None,
    kv: str | None = None,
    compute: str | None = None,
    batch: int | None = None,
) -> Estimate | None:
    """Re-derive a workloads row's figures, optionally at another weight/KV/compute precision
    or batch (a mitigation); None where the row was not produced from a model preset.

    The row's own weight and KV precisions are the defaults (where the row predates those
    columns: its ``precision`` for the weights, the model's dtype for the KV cache); the
    matmuls keep running at the row's ``precision``.
    """

    def given(key: str) -> Any:
        value = row.get(key)
        return None if value is None or value != value else value  # NaN -> None

    name, phase = given("model_preset"), given("phase")
    if name is None or phase not in MODEL_PHASES:
        return None
    context, rows_batch = given("context_tokens"), given("batch")
    if context is None or rows_batch is None:
        return None
    precision = str(row["precision"])
    row_weights = str(given("weight_precision") or precision)
    row_kv = given("kv_precision")  # None: the model's dtype, as the row was derived
    return estimate(
        preset(str(name)),
        phase=str(phase),
        batch=int(batch if batch is not None else rows_batch),
        context=int(context),
        weights=weights or row_weights,
        kv=kv or (None if row_kv is None else str(row_kv)),
        activations=compute or precision,
    )
