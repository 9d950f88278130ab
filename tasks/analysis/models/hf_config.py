"""An architecture read from a Hugging Face ``config.json`` on disk (memwall never downloads).

Covers the decoder families whose configs name their shape with the usual keys: Llama,
Mistral, Mixtral, Qwen2/2.5 (and their MoE), Gemma 2, DeepSeek-V2/V3 (MLA), GPT-2-style
models. Multimodal configs that nest the language model under ``text_config`` are read from
there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hardware_profiles.errors import ProfileError
from tasks.analysis.workload_model import Architecture, WorkloadModelError

# Families whose MLP is a plain up/down projection rather than a gated (SwiGLU/GeGLU) one.
_UNGATED = {"gpt2", "gpt_neox", "gptj", "gpt_bigcode", "opt", "bloom", "falcon", "phi"}
# Names some families use for the standard keys.
_ALIASES = {
    "num_hidden_layers": ("n_layer", "num_layers"),
    "hidden_size": ("n_embd", "d_model"),
    "num_attention_heads": ("n_head",),
    "max_position_embeddings": ("n_positions", "max_sequence_length"),
}
_REQUIRED = (
    "num_hidden_layers",
    "hidden_size",
    "num_attention_heads",
    "vocab_size",
    "max_position_embeddings",
)


def _get(config: dict[str, Any], key: str) -> Any:
    for name in (key, *_ALIASES.get(key, ())):
        if config.get(name) is not None:
            return config[name]
    return None


def architecture_from_hf_config(path: str | Path, name: str | None = None) -> Architecture:
    """Read ``path``; the architecture is named ``name`` or after the file's folder."""
    path = Path(path)
    if not path.is_file():
        raise ProfileError(path, "no such config.json file")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProfileError(path, f"is not a readable JSON file ({exc})") from None
    if not isinstance(config, dict):
        raise ProfileError(path, "is not a Hugging Face config (expected a JSON object)")
    if isinstance(config.get("text_config"), dict):
        config = {**config["text_config"], "model_type": config["text_config"].get("model_type")}
    missing = [k for k in _REQUIRED if _get(config, k) is None]
    if missing:
        raise ProfileError(
            path,
            f"missing key(s) {', '.join(missing)}; a decoder config needs {', '.join(_REQUIRED)}",
            column=missing[0],
        )
    model_type = str(config.get("model_type") or "")
    hidden = int(_get(config, "hidden_size"))
    heads = int(_get(config, "num_attention_heads"))
    layers = int(_get(config, "num_hidden_layers"))
    head_dim = int(config.get("qk_nope_head_dim") or config.get("head_dim") or hidden // heads)
    ffn = int(config.get("intermediate_size") or config.get("n_inner") or 4 * hidden)
    experts = int(
        config.get("num_local_experts")
        or config.get("n_routed_experts")
        or config.get("num_experts")
        or 0
    )
    expert_ffn = int(config.get("moe_intermediate_size") or ffn) if experts else 0
    shared_ffn = int(
        config.get("shared_expert_intermediate_size")
        or (config.get("n_shared_experts") or 0) * expert_ffn
    )
    sliding_window = int(config.get("sliding_window") or 0)
    if model_type.startswith("gemma2"):
        sliding_layers = layers // 2
    elif model_type.startswith("qwen2"):
        uses = bool(config.get("use_sliding_window"))
        sliding_layers = layers - int(config.get("max_window_layers") or 0) if uses else 0
    else:
        sliding_layers = layers if sliding_window else 0
    tied_default = model_type.startswith(("gemma", "gpt2"))
    try:
        return Architecture(
            name=name or path.parent.name or path.stem,
            source=f"Hugging Face config {path.name} ({model_type or 'unknown model_type'})",
            layers=layers,
            hidden=hidden,
            heads=heads,
            kv_heads=int(config.get("num_key_value_heads") or heads),
            head_dim=head_dim,
            ffn=ffn,
            vocab=int(config["vocab_size"]),
            max_context=int(_get(config, "max_position_embeddings")),
            gated_ffn=model_type not in _UNGATED,
            tied_embeddings=bool(config.get("tie_word_embeddings", tied_default)),
            experts=experts,
            experts_per_token=int(config.get("num_experts_per_tok") or 0) if experts else 0,
            expert_ffn=expert_ffn,
            shared_ffn=shared_ffn,
            dense_layers=int(config.get("first_k_dense_replace") or 0) if experts else 0,
            q_lora_rank=int(config.get("q_lora_rank") or 0),
            kv_lora_rank=int(config.get("kv_lora_rank") or 0),
            qk_rope_dim=int(config.get("qk_rope_head_dim") or 0)
            if config.get("kv_lora_rank")
            else 0,
            v_head_dim=int(config.get("v_head_dim") or 0),
            sliding_window=sliding_window if sliding_layers else 0,
            sliding_layers=sliding_layers if sliding_window else 0,
            qkv_bias=bool(config.get("attention_bias")) or model_type.startswith("qwen2"),
            linear_bias=model_type in _UNGATED,
            norm_bias=model_type in _UNGATED,
            norms_per_layer=4 if model_type.startswith("gemma2") else 2,
            learned_positions=int(_get(config, "max_position_embeddings"))
            if model_type in {"gpt2", "opt"}
            else 0,
        )
    except (TypeError, ValueError) as exc:
        raise ProfileError(path, f"has a value of the wrong type ({exc})") from None
    except WorkloadModelError as exc:
        raise ProfileError(path, str(exc)) from None
