"""Today's architectures: each 2025 preset against its publisher's parameter total and a KV
cache size worked by hand, and the config.json import against the preset.

The configs below are the published config.json values (for multimodal models, the
text_config), keys that change no cost left out except where the import must be seen to
read or ignore them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from hardware_profiles.errors import ProfileError
from tasks.analysis.workload.hf_config import import_hf_config
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate, parameters

GPT_OSS = {
    "architectures": ["GptOssForCausalLM"],
    "model_type": "gpt_oss",
    "hidden_size": 2880,
    "intermediate_size": 2880,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "head_dim": 64,
    "num_experts_per_tok": 4,
    "experts_per_token": 4,
    "sliding_window": 128,
    "vocab_size": 201088,
    "max_position_embeddings": 131072,
    "attention_bias": True,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "rope_scaling": {"factor": 32.0, "rope_type": "yarn"},
    "swiglu_limit": 7.0,
    "quantization_config": {
        "quant_method": "mxfp4",
        "modules_to_not_convert": [
            "model.layers.*.self_attn",
            "model.layers.*.mlp.router",
            "model.embed_tokens",
            "lm_head",
        ],
    },
}
CONFIGS: dict[str, dict[str, Any]] = {
    "gpt-oss-120b": GPT_OSS
    | {
        "num_hidden_layers": 36,
        "num_local_experts": 128,
        "layer_types": ["sliding_attention", "full_attention"] * 18,
    },
    "gpt-oss-20b": GPT_OSS
    | {
        "num_hidden_layers": 24,
        "num_local_experts": 32,
        "layer_types": ["sliding_attention", "full_attention"] * 12,
    },
}
LLAMA_4_TEXT = {
    "model_type": "llama4_text",
    "attention_chunk_size": 8192,
    "head_dim": 128,
    "hidden_size": 5120,
    "intermediate_size": 8192,
    "intermediate_size_mlp": 16384,
    "num_attention_heads": 40,
    "num_experts_per_tok": 1,
    "num_hidden_layers": 48,
    "num_key_value_heads": 8,
    "vocab_size": 202048,
    "tie_word_embeddings": False,
    "attn_temperature_tuning": True,
    "floor_scale": 8192,
}


def _llama4(text: dict[str, Any]) -> dict[str, Any]:
    return {
        "architectures": ["Llama4ForConditionalGeneration"],
        "model_type": "llama4",
        "torch_dtype": "bfloat16",
        "text_config": LLAMA_4_TEXT | text,
        "vision_config": {"hidden_size": 1408, "num_hidden_layers": 34},
    }


CONFIGS["llama-4-scout"] = _llama4(
    {
        "interleave_moe_layer_step": 1,
        "num_local_experts": 16,
        "max_position_embeddings": 10485760,
        "use_qk_norm": True,
    }
)
CONFIGS["llama-4-maverick"] = _llama4(
    {
        "interleave_moe_layer_step": 2,
        "num_local_experts": 128,
        "max_position_embeddings": 1048576,
        "use_qk_norm": False,
    }
)
QWEN3_MOE = {
    "architectures": ["Qwen3MoeForCausalLM"],
    "model_type": "qwen3_moe",
    "head_dim": 128,
    "num_key_value_heads": 4,
    "num_experts": 128,
    "num_experts_per_tok": 8,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [],
    "norm_topk_prob": True,
    "vocab_size": 151936,
    "max_position_embeddings": 40960,
    "attention_bias": False,
    "use_sliding_window": False,
    "sliding_window": None,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}
CONFIGS["qwen3-235b-a22b"] = QWEN3_MOE | {
    "hidden_size": 4096,
    "intermediate_size": 12288,
    "moe_intermediate_size": 1536,
    "num_hidden_layers": 94,
    "num_attention_heads": 64,
    "max_window_layers": 94,
}
CONFIGS["qwen3-30b-a3b"] = QWEN3_MOE | {
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "moe_intermediate_size": 768,
    "num_hidden_layers": 48,
    "num_attention_heads": 32,
    "max_window_layers": 48,
}
# google/gemma-3-27b-it: the text_config names neither vocab_size nor max_position_embeddings
# nor the 5:1 pattern; transformers' defaults fill them (and the import says so).
CONFIGS["gemma-3-27b"] = {
    "architectures": ["Gemma3ForConditionalGeneration"],
    "model_type": "gemma3",
    "torch_dtype": "bfloat16",
    "mm_tokens_per_image": 256,
    "text_config": {
        "head_dim": 128,
        "hidden_size": 5376,
        "intermediate_size": 21504,
        "model_type": "gemma3_text",
        "num_attention_heads": 32,
        "num_hidden_layers": 62,
        "num_key_value_heads": 16,
        "query_pre_attn_scalar": 168,
        "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
        "sliding_window": 1024,
    },
    "vision_config": {"hidden_size": 1152, "model_type": "siglip_vision_model"},
}
DEEPSEEK_V3_FAMILY = {
    "architectures": ["DeepseekV3ForCausalLM"],
    "hidden_size": 7168,
    "intermediate_size": 18432,
    "moe_intermediate_size": 2048,
    "num_hidden_layers": 61,
    "n_shared_experts": 1,
    "num_experts_per_tok": 8,
    "moe_layer_freq": 1,
    "q_lora_rank": 1536,
    "kv_lora_rank": 512,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "v_head_dim": 128,
    "tie_word_embeddings": False,
    "topk_method": "noaux_tc",
    "scoring_func": "sigmoid",
    "torch_dtype": "bfloat16",
}
CONFIGS["kimi-k2"] = DEEPSEEK_V3_FAMILY | {
    "model_type": "kimi_k2",
    "num_attention_heads": 64,
    "num_key_value_heads": 64,
    "n_routed_experts": 384,
    "first_k_dense_replace": 1,
    "vocab_size": 163840,
    "max_position_embeddings": 131072,
}
CONFIGS["deepseek-r1"] = DEEPSEEK_V3_FAMILY | {
    "model_type": "deepseek_v3",
    "num_attention_heads": 128,
    "num_key_value_heads": 128,
    "n_routed_experts": 256,
    "first_k_dense_replace": 3,
    "vocab_size": 129280,
    "max_position_embeddings": 163840,
    "num_nextn_predict_layers": 1,
}


def _import(tmp_path: Path, name: str, config: dict[str, Any]) -> Any:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    return import_hf_config(folder / "config.json")


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_import_reads_what_the_preset_says(tmp_path: Path, name: str) -> None:
    imported = _import(tmp_path, name, CONFIGS[name]).architecture
    fields = [f.name for f in dataclasses.fields(imported) if f.name not in ("name", "source")]
    mismatched = {
        f: (getattr(imported, f), getattr(preset(name), f))
        for f in fields
        if getattr(imported, f) != getattr(preset(name), f)
    }
    assert mismatched == {}


# name: (publisher's total, its tolerance, where the figure comes from).
PUBLISHED: dict[str, tuple[float, float, str]] = {
    "gpt-oss-120b": (116.83e9, 0.001, "model card: 116.83B total"),
    "gpt-oss-20b": (20.91e9, 0.001, "model card: 20.91B total"),
    # Meta states 109B and 400B total with the vision encoder, which memwall does not count.
    "llama-4-scout": (109e9, 0.015, "Meta: 109B total incl. vision encoder"),
    "llama-4-maverick": (400e9, 0.005, "Meta: 400B total incl. vision encoder"),
    "qwen3-235b-a22b": (235e9, 0.002, "model card: 235B total"),
    "qwen3-30b-a3b": (30.5e9, 0.002, "model card: 30.5B total"),
    # Gemma 3 report, Table 1: 1,416M embedding + 25,600M non-embedding (vision 417M apart).
    "gemma-3-27b": (27.016e9, 0.001, "Gemma 3 report: 1,416M + 25,600M"),
    # "1T total": a rounded figure; the sum of the config's tensors is 1.026T.
    "kimi-k2": (1.0e12, 0.03, "model card: 1T total"),
    "deepseek-r1": (671e9, 0.001, "model card: 671B total (MTP module apart)"),
    # zai-org/GLM-4.5 README: "355B-A32B"; GLM-4.7 ships the same shapes. memwall's sum of the
    # config's tensors (MTP layer apart) is 352.80B, 0.6 % under the rounded figure.
    "glm-4.7": (355e9, 0.01, "GLM-4.5 README: 355B total, same config"),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_total_matches_the_publisher(name: str) -> None:
    total, tolerance, _ = PUBLISHED[name]
    assert parameters(preset(name)).total == pytest.approx(total, rel=tolerance)


def test_parameter_totals_by_hand() -> None:
    # gpt-oss-120b, per layer: q 2880x4096 + k, v 2880x512 each + o 4096x2880 + their biases
    # (4096 + 512 + 512 + 2880) + 64 sinks + 2 norms of 2880; router 2880x128 + 128; each
    # expert 2880x5760 + 5760 (gate_up) + 2880x2880 + 2880 (down). Embedding and head
    # 201088 x 2880 each, final norm 2880.
    attention = 2880 * 4096 + 2 * 2880 * 512 + 4096 * 2880 + 4096 + 512 + 512 + 2880 + 64
    expert = 2880 * 5760 + 5760 + 2880 * 2880 + 2880
    layer = attention + 2 * 2880 + 2880 * 128 + 128 + 128 * expert
    assert parameters(preset("gpt-oss-120b")).total == 36 * layer + 2 * 201088 * 2880 + 2880
    # llama-4-maverick: 24 MoE layers (128 experts + a shared one, each 3 x 5120 x 8192, router
    # 5120 x 128) and 24 dense layers (3 x 5120 x 16384); attention q, o 5120x5120, k, v
    # 5120x1024; two norms per layer; embedding and head 202048 x 5120, final norm.
    attention = 2 * 5120 * 5120 + 2 * 5120 * 1024 + 2 * 5120
    moe = 129 * 3 * 5120 * 8192 + 5120 * 128
    dense = 3 * 5120 * 16384
    total = 48 * attention + 24 * moe + 24 * dense + 2 * 202048 * 5120 + 5120
    assert parameters(preset("llama-4-maverick")).total == total
    # glm-4.7, per layer: q 5120x12288 (96 x 128), k, v 5120x1024 each, o 12288x5120, biases on
    # q, k, v (12288 + 1024 + 1024), q and k norms of 128, two norms of 5120; 3 dense layers of
    # 3 x 5120 x 12288; 89 MoE layers of 161 experts (160 routed + 1 shared) x 3 x 5120 x 1536
    # and a router 5120 x 160. Embedding and head 151552 x 5120 each, final norm 5120.
    attention = 5120 * 12288 + 2 * 5120 * 1024 + 12288 * 5120 + 12288 + 2048 + 256 + 2 * 5120
    dense = 3 * 5120 * 12288
    moe = 161 * 3 * 5120 * 1536 + 5120 * 160
    total = 92 * attention + 3 * dense + 89 * moe + 2 * 151552 * 5120 + 5120
    assert parameters(preset("glm-4.7")).total == total == 352_797_814_784


# Active parameters: publishers of Llama 4 and Qwen3 count the embedding in, memwall does not
# (a token gathers one row of it); gpt-oss and DeepSeek count as memwall does.
ACTIVE = {
    "gpt-oss-120b": (5.13e9, 0),
    "gpt-oss-20b": (3.61e9, 0),
    "llama-4-scout": (17e9, 202048 * 5120),
    "llama-4-maverick": (17e9, 202048 * 5120),
    "qwen3-235b-a22b": (22e9, 151936 * 4096),
    "qwen3-30b-a3b": (3.3e9, 151936 * 2048),
    "kimi-k2": (32e9, 0),
    "deepseek-r1": (37e9, 0),
}


@pytest.mark.parametrize("name", sorted(ACTIVE))
def test_active_parameters_match_the_publisher(name: str) -> None:
    published, embedding = ACTIVE[name]
    active = parameters(preset(name)).active_per_token + embedding
    assert active == pytest.approx(published, rel=0.02)


# KV cache of one sequence at bf16 (2 bytes), worked by hand: K and V, KV heads x head_dim.
KV_CACHE = {
    # 18 full layers x 131072 tokens + 18 sliding layers x 128, each 2 x 8 x 64 x 2 = 2048 B
    # (36 full layers would be 9.66e9: twice as much).
    ("gpt-oss-120b", 131072): (18 * 131072 + 18 * 128) * 2048,
    ("gpt-oss-20b", 131072): (12 * 131072 + 12 * 128) * 2048,
    # 12 NoPE (full) layers x 1M tokens + 36 chunked layers x 8192, 2 x 8 x 128 x 2 = 4096 B.
    ("llama-4-scout", 1048576): (12 * 1048576 + 36 * 8192) * 4096,
    ("llama-4-maverick", 1048576): (12 * 1048576 + 36 * 8192) * 4096,
    # 94 full layers x 2 x 4 x 128 x 2 = 2048 B.
    ("qwen3-235b-a22b", 32768): 94 * 32768 * 2048,
    ("qwen3-30b-a3b", 32768): 48 * 32768 * 2048,
    # 10 global layers x 131072 + 52 local x 1024, 2 x 16 x 128 x 2 = 8192 B.
    ("gemma-3-27b", 131072): (10 * 131072 + 52 * 1024) * 8192,
    # MLA: the 512 latent + 64 RoPE key per layer, 61 layers x 576 x 2 = 70,272 B per token.
    ("kimi-k2", 131072): 131072 * 61 * 576 * 2,
    ("deepseek-r1", 131072): 131072 * 61 * 576 * 2,
}


@pytest.mark.parametrize(("case", "expected"), sorted(KV_CACHE.items()))
def test_kv_cache_worked_by_hand(case: tuple[str, int], expected: int) -> None:
    name, context = case
    decode = estimate(preset(name), phase="decode", batch=1, context=context)
    assert decode.kv == "bf16"
    assert decode.kv_cache_bytes == expected


def test_chunked_prefill_attends_within_chunks() -> None:
    # A 16384-token prompt on a chunked layer: two chunks of 8192, each causal: a query sees
    # on average (8192 + 1) / 2 keys, not (16384 + 1) / 2 as on a full layer.
    scout = preset("llama-4-scout")
    prefill = estimate(scout, phase="prefill", context=16384)
    per_pair = 2 * 40 * (128 + 128)
    keys = 12 * (16384 + 1) / 2 + 36 * (8192 + 1) / 2
    assert prefill.components["attention"].flops == pytest.approx(keys * per_pair)


def test_what_the_import_does_not_understand_is_said(tmp_path: Path) -> None:
    gemma = _import(tmp_path, "gemma", CONFIGS["gemma-3-27b"]).warnings
    assert any("vision_config: the vision encoder is not counted" in w for w in gemma)
    assert any(
        "vocab_size absent; transformers' gemma3_text default 262208 used" in w for w in gemma
    )
    oss = _import(tmp_path, "oss", CONFIGS["gpt-oss-120b"]).warnings
    assert any("quantization_config (mxfp4) not applied" in w for w in oss)
    odd = CONFIGS["gpt-oss-20b"] | {
        "layer_types": ["linear_attention", "full_attention"] * 12,
        "mamba_d_state": 64,
    }
    warnings = _import(tmp_path, "odd", odd).warnings
    assert any("mamba_d_state is not understood; ignored" in w for w in warnings)
    assert any("layer_types linear_attention not understood" in w for w in warnings)
    assert all(str(tmp_path) in w for w in warnings)  # each names the file


def test_gemma_2_alternates_local_and_global(tmp_path: Path) -> None:
    # google/gemma-2-27b config.json: 46 layers, sliding_window 4096 on every other layer.
    config = {
        "model_type": "gemma2",
        "hidden_size": 4608,
        "intermediate_size": 36864,
        "num_attention_heads": 32,
        "num_key_value_heads": 16,
        "head_dim": 128,
        "num_hidden_layers": 46,
        "sliding_window": 4096,
        "vocab_size": 256000,
        "max_position_embeddings": 8192,
    }
    arch = _import(tmp_path, "gemma2", config).architecture
    assert (arch.sliding_layers, arch.sliding_window) == (23, 4096)
    assert parameters(arch).total == parameters(preset("gemma-2-27b")).total


def test_a_wrong_layer_count_is_an_error_not_a_guess(tmp_path: Path) -> None:
    broken = CONFIGS["gpt-oss-20b"] | {"num_hidden_layers": "twenty"}
    with pytest.raises(ProfileError, match="num_hidden_layers must be a whole number") as caught:
        _import(tmp_path, "broken", broken)
    assert caught.value.column == "num_hidden_layers"


def test_qwen3_dense_counts_its_qk_norms(tmp_path: Path) -> None:
    # Qwen/Qwen3-8B config.json; the model card states 8.2B total, 6.95B non-embedding.
    config = {
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        "attention_bias": False,
        "head_dim": 128,
        "hidden_size": 4096,
        "intermediate_size": 12288,
        "max_position_embeddings": 40960,
        "max_window_layers": 36,
        "num_attention_heads": 32,
        "num_hidden_layers": 36,
        "num_key_value_heads": 8,
        "sliding_window": None,
        "use_sliding_window": False,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "vocab_size": 151936,
    }
    imported = _import(tmp_path, "qwen3-8b", config)
    assert imported.warnings == ()
    p = parameters(imported.architecture)
    # Per layer: q, o 4096x4096; k, v 4096x1024; SwiGLU 3 x 4096 x 12288; two RMSNorms of
    # 4096 and the q/k norms of 128 each.
    layer = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 12288 + 2 * 4096 + 2 * 128
    assert p.total == 36 * layer + 2 * 151936 * 4096 + 4096
    assert p.total - 2 * 151936 * 4096 == pytest.approx(6.95e9, rel=0.001)
    assert p.total == pytest.approx(8.2e9, rel=0.003)
