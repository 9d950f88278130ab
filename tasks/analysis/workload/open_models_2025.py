"""Presets of the open models of 2025: hybrid sliding/full attention (gpt-oss, Gemma 3),
Llama 4's interleaved MoE and chunked attention, Qwen3 MoE, GLM-4.7's shared-expert MoE, MLA
with many experts (Kimi-K2, DeepSeek-R1).

Figures are the published ``config.json`` values (the repository is named in ``source``; for
multimodal models the ``text_config``); the per-layer patterns are what the import
(``hf_config``) reads from ``layer_types``, ``sliding_window_pattern``, ``no_rope_layers``,
``interleave_moe_layer_step`` and ``first_k_dense_replace``, and the tests import the same
configs and compare. The tests check each against its publisher's parameter total and a KV
cache size worked by hand.
"""

from __future__ import annotations

from typing import Final

from tasks.analysis.workload.architecture import Architecture


def _gpt_oss(name: str, layers: int, experts: int) -> Architecture:
    """openai/gpt-oss-*: 64 query heads of 64, 8 KV heads, layer_types alternating sliding
    (window 128) and full from the first layer, attention sinks, biases on q/k/v/o, the router
    and the experts; 4 of ``experts`` experts of width 2880 per token. The checkpoint ships the
    expert weights in MXFP4 (quantization_config), the rest in bf16."""
    return Architecture(
        name=name,
        source=f"openai/{name} config.json",
        layers=layers,
        hidden=2880,
        heads=64,
        kv_heads=8,
        head_dim=64,
        ffn=2880,
        vocab=201088,
        max_context=131072,
        experts=experts,
        experts_per_token=4,
        expert_ffn=2880,
        sliding_window=128,
        sliding_layers=layers // 2,
        attention_sinks=True,
        qkv_bias=True,
        o_bias=True,
        expert_bias=True,
    )


def _llama4(name: str, repo: str, experts: int, dense_layers: int, context: int) -> Architecture:
    """meta-llama/Llama-4-*, text_config: 48 layers, hidden 5120, 40 query heads of 128, 8 KV
    heads; every fourth layer is NoPE with full attention (no_rope_layers), the other 36
    attend within chunks of attention_chunk_size 8192; MoE layers have ``experts`` routed
    experts of intermediate_size 8192 (1 per token) plus one shared expert as wide; the
    ``dense_layers`` others (interleave_moe_layer_step 2: every other) a dense FFN of
    intermediate_size_mlp 16384. The vision encoder is not counted."""
    return Architecture(
        name=name,
        source=f"{repo} config.json (text_config)",
        layers=48,
        hidden=5120,
        heads=40,
        kv_heads=8,
        head_dim=128,
        ffn=16384,
        vocab=202048,
        max_context=context,
        experts=experts,
        experts_per_token=1,
        expert_ffn=8192,
        shared_ffn=8192,
        dense_layers=dense_layers,
        attention_chunk=8192,
        chunked_layers=36,
    )


def _qwen3_moe(
    name: str, repo: str, layers: int, hidden: int, heads: int, ffn: int, expert_ffn: int
) -> Architecture:
    """Qwen/Qwen3-*-A*B: every layer MoE (decoder_sparse_step 1, mlp_only_layers []), 128
    experts, 8 per token, no shared expert; 4 KV heads of 128; RMSNorm on q and k."""
    return Architecture(
        name=name,
        source=f"{repo} config.json",
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=4,
        head_dim=128,
        ffn=ffn,
        vocab=151936,
        max_context=40960,
        experts=128,
        experts_per_token=8,
        expert_ffn=expert_ffn,
        qk_norm=True,
    )


def _mla(
    name: str, repo: str, *, heads: int, experts: int, dense: int, vocab: int, max_context: int
) -> Architecture:
    """DeepSeek-V3 architecture (deepseek_v3, kimi_k2): 61 layers, hidden 7168, MLA
    (q_lora_rank 1536, kv_lora_rank 512, qk_nope_head_dim 128, qk_rope_head_dim 64,
    v_head_dim 128), ``experts`` routed experts of 2048, 8 per token, one shared; the first
    ``dense`` layers (first_k_dense_replace) dense with intermediate_size 18432. The
    multi-token-prediction module is not counted (the publishers' totals leave it out)."""
    return Architecture(
        name=name,
        source=f"{repo} config.json",
        layers=61,
        hidden=7168,
        heads=heads,
        kv_heads=heads,
        head_dim=128,
        ffn=18432,
        experts=experts,
        experts_per_token=8,
        expert_ffn=2048,
        shared_ffn=2048,
        dense_layers=dense,
        q_lora_rank=1536,
        kv_lora_rank=512,
        qk_rope_dim=64,
        v_head_dim=128,
        vocab=vocab,
        max_context=max_context,
    )


OPEN_MODELS_2025: Final = (
    _gpt_oss("gpt-oss-120b", layers=36, experts=128),
    _gpt_oss("gpt-oss-20b", layers=24, experts=32),
    _llama4(
        "llama-4-scout", "meta-llama/Llama-4-Scout-17B-16E", 16, dense_layers=0, context=10485760
    ),
    _llama4(
        "llama-4-maverick",
        "meta-llama/Llama-4-Maverick-17B-128E",
        128,
        dense_layers=24,
        context=1048576,
    ),
    _qwen3_moe("qwen3-235b-a22b", "Qwen/Qwen3-235B-A22B", 94, 4096, 64, 12288, 1536),
    _qwen3_moe("qwen3-30b-a3b", "Qwen/Qwen3-30B-A3B", 48, 2048, 32, 6144, 768),
    # google/gemma-3-27b-it config.json, text_config: 62 layers, hidden 5376, 32 query heads
    # and 16 KV heads of 128, GeGLU 21504, four RMSNorms per layer plus q/k norms, tied
    # embeddings; sliding_window 1024 on five layers of every six (sliding_window_pattern 6:
    # 52 local, 10 global). vocab_size and max_position_embeddings are not in the file:
    # transformers' Gemma3TextConfig defaults (262208, 131072). The vision encoder is not
    # counted.
    Architecture(
        name="gemma-3-27b",
        source="google/gemma-3-27b-it config.json (text_config)",
        layers=62,
        hidden=5376,
        heads=32,
        kv_heads=16,
        head_dim=128,
        ffn=21504,
        vocab=262208,
        max_context=131072,
        tied_embeddings=True,
        norms_per_layer=4,
        qk_norm=True,
        sliding_window=1024,
        sliding_layers=52,
    ),
    # zai-org/GLM-4.7 config.json (glm4_moe): 92 layers, hidden 5120, 96 query heads and 8 KV
    # heads of 128 (partial_rotary_factor 0.5 changes no shape), attention_bias (on q, k and v:
    # transformers' Glm4MoeAttention keeps o_proj without one), use_qk_norm; the first 3 layers
    # (first_k_dense_replace) dense of intermediate_size 12288, the other 89 with 160 routed
    # experts of moe_intermediate_size 1536, 8 per token, and one shared expert as wide; vocab
    # 151552, untied; max_position_embeddings 202752. The multi-token-prediction layer
    # (num_nextn_predict_layers 1) is not counted. The same shapes as GLM-4.5 (355B-A32B).
    Architecture(
        name="glm-4.7",
        source="zai-org/GLM-4.7 config.json",
        layers=92,
        hidden=5120,
        heads=96,
        kv_heads=8,
        head_dim=128,
        ffn=12288,
        vocab=151552,
        max_context=202752,
        experts=160,
        experts_per_token=8,
        expert_ffn=1536,
        shared_ffn=1536,
        dense_layers=3,
        qkv_bias=True,
        qk_norm=True,
    ),
    _mla(
        "kimi-k2",
        "moonshotai/Kimi-K2-Instruct",
        heads=64,
        experts=384,
        dense=1,
        vocab=163840,
        max_context=131072,
    ),
    _mla(
        "deepseek-r1",
        "deepseek-ai/DeepSeek-R1",
        heads=128,
        experts=256,
        dense=3,
        vocab=129280,
        max_context=163840,
    ),
)
