"""An architecture read from a Hugging Face ``config.json`` on disk (memwall never downloads).

Covers the decoder families whose configs name their shape with the usual keys: Llama 2/3,
Mistral, Mixtral, Qwen2/2.5 and Qwen3 (dense and MoE), Gemma 2 and 3, gpt-oss, Llama 4 (Scout,
Maverick), DeepSeek-V2/V3/R1 and Kimi-K2 (MLA), GPT-2-style models. Multimodal configs that
nest the language model under ``text_config`` are read from there (the vision tower is not
counted, and the import says so).

Per-layer patterns are read, not guessed: ``layer_types`` (``sliding_attention`` /
``full_attention`` / ``chunked_attention``) where the config lists them, else the family's rule
as transformers applies it (Gemma 2: every other layer local; Gemma 3:
``sliding_window_pattern``; Llama 4: RoPE layers chunked per ``no_rope_layers``; MoE layers per
``interleave_moe_layer_step``/``moe_layers``, ``first_k_dense_replace``, ``mlp_only_layers``
and ``decoder_sparse_step``). A key the import does not understand is a warning naming it,
never a silent guess; so is a default filled in where a family's config omits a key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardware_profiles.errors import ProfileError
from tasks.analysis.workload.architecture import Architecture, WorkloadModelError

# Families whose MLP is a plain up/down projection rather than a gated (SwiGLU/GeGLU) one.
_UNGATED = {"gpt2", "gpt_neox", "gptj", "gpt_bigcode", "opt", "bloom", "falcon", "phi"}
# Names some families use for the standard keys.
_ALIASES = {
    "num_hidden_layers": ("n_layer", "num_layers"),
    "hidden_size": ("n_embd", "d_model"),
    "num_attention_heads": ("n_head",),
    "max_position_embeddings": ("n_positions", "max_sequence_length"),
    "num_local_experts": ("n_routed_experts", "num_experts"),
    "num_experts_per_tok": ("experts_per_token",),
}
_REQUIRED = (
    "num_hidden_layers",
    "hidden_size",
    "num_attention_heads",
    "vocab_size",
    "max_position_embeddings",
)
# Counts that must be whole numbers above 0 where present (the experts may be 0: dense).
_COUNTS = (
    "num_hidden_layers",
    "hidden_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "vocab_size",
    "max_position_embeddings",
    "intermediate_size",
)
_MAYBE_ZERO = ("num_local_experts", "num_experts_per_tok")
# Defaults transformers fills in where a family's published config.json omits the key
# (Gemma3TextConfig: google/gemma-3-27b-it's text_config names neither).
_FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "gemma3_text": {
        "vocab_size": 262208,
        "max_position_embeddings": 131072,
        "sliding_window_pattern": 6,
    },
    "gemma3": {
        "vocab_size": 262208,
        "max_position_embeddings": 131072,
        "sliding_window_pattern": 6,
    },
}
# Keys read below.
_READ = {
    *_REQUIRED,
    *(a for names in _ALIASES.values() for a in names),
    "model_type",
    "text_config",
    "torch_dtype",
    "dtype",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "intermediate_size_mlp",
    "n_inner",
    "tie_word_embeddings",
    "num_local_experts",
    "num_experts_per_tok",
    "moe_intermediate_size",
    "shared_expert_intermediate_size",
    "n_shared_experts",
    "first_k_dense_replace",
    "interleave_moe_layer_step",
    "moe_layers",
    "moe_layer_freq",
    "mlp_only_layers",
    "decoder_sparse_step",
    "q_lora_rank",
    "kv_lora_rank",
    "qk_nope_head_dim",
    "qk_rope_head_dim",
    "v_head_dim",
    "sliding_window",
    "use_sliding_window",
    "max_window_layers",
    "layer_types",
    "sliding_window_pattern",
    "_sliding_window_pattern",
    "attention_chunk_size",
    "no_rope_layers",
    "no_rope_layer_interval",
    "attention_bias",
    "mlp_bias",
    "use_qk_norm",  # Llama 4: an L2 norm, no weights
    "quantization_config",
    "vision_config",
}
# Keys that change neither parameters, nor KV cache, nor FLOPs (token ids, numerics, position
# encodings, routing details, training switches): understood and left alone.
_NO_COST = {
    "architectures",
    "_name_or_path",
    "transformers_version",
    "auto_map",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "initializer_range",
    "rms_norm_eps",
    "layer_norm_eps",
    "layer_norm_epsilon",
    "norm_eps",
    "hidden_act",
    "hidden_activation",
    "activation_function",
    "attention_dropout",
    "hidden_dropout",
    "resid_pdrop",
    "embd_pdrop",
    "attn_pdrop",
    "rope_theta",
    "rope_scaling",
    "rope_parameters",
    "rope_local_base_freq",
    "rope_interleave",
    "partial_rotary_factor",
    "use_cache",
    "cache_implementation",
    "output_router_logits",
    "router_aux_loss_coef",
    "router_jitter_noise",
    "aux_loss_alpha",
    "seq_aux",
    "norm_topk_prob",
    "scoring_func",
    "topk_method",
    "n_group",
    "topk_group",
    "routed_scaling_factor",
    "ep_size",
    "attn_logit_softcapping",
    "final_logit_softcapping",
    "query_pre_attn_scalar",
    "attn_temperature_tuning",
    "floor_scale",
    "attn_scale",
    "swiglu_limit",
    "initial_context_length",
    "pretraining_tp",
    "for_llm_compressor",
    "use_bidirectional_attention",
    "boi_token_index",
    "eoi_token_index",
    "image_token_index",
    "mm_tokens_per_image",
    "num_nextn_predict_layers",  # speculative MTP module: publishers' totals leave it out
}
_LAYER_KINDS = ("full_attention", "sliding_attention", "chunked_attention")


@dataclass(frozen=True)
class HfImport:
    """An architecture and what the import could not take from the file as it stands."""

    architecture: Architecture
    warnings: tuple[str, ...]


def _dtype(name: object) -> str:
    return {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}.get(str(name), "bf16")


class _Config:
    """A config's keys, read once each; unknown keys and filled-in defaults become warnings."""

    def __init__(self, config: dict[str, Any], warn: Callable[[str], None]) -> None:
        self.config = config
        self.warn = warn
        self.model_type = str(config.get("model_type") or "")
        self.defaulted: set[str] = set()

    def get(self, key: str) -> Any:
        for name in (key, *_ALIASES.get(key, ())):
            if self.config.get(name) is not None:
                return self.config[name]
        default = _FAMILY_DEFAULTS.get(self.model_type, {}).get(key)
        if default is not None and key not in self.defaulted:
            self.defaulted.add(key)
            self.warn(f"{key} absent; transformers' {self.model_type} default {default} used")
        return default

    def int(self, key: str, default: int = 0) -> int:
        value = self.get(key)
        return default if value is None else int(value)

    def unknown_keys(self) -> list[str]:
        return sorted(k for k in self.config if k not in _READ and k not in _NO_COST)


def _layer_kinds(c: _Config, layers: int) -> list[str]:
    """Each layer's attention: full, sliding (a window) or chunked (Llama 4)."""
    listed = c.get("layer_types")
    if isinstance(listed, list) and listed:
        if len(listed) != layers:
            c.warn(f"layer_types lists {len(listed)} layers for {layers}; all taken as full")
            return ["full_attention"] * layers
        odd = sorted({str(k) for k in listed} - set(_LAYER_KINDS))
        if odd:
            c.warn(f"layer_types {', '.join(odd)} not understood; taken as full attention")
        return [k if k in _LAYER_KINDS else "full_attention" for k in map(str, listed)]
    if c.int("attention_chunk_size"):
        interval = c.int("no_rope_layer_interval", 4)
        rope = c.get("no_rope_layers") or [int((i + 1) % interval != 0) for i in range(layers)]
        return ["chunked_attention" if r else "full_attention" for r in rope]
    if not c.int("sliding_window"):
        return ["full_attention"] * layers
    if c.model_type.startswith("gemma2"):
        return ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)]
    pattern = c.int("sliding_window_pattern") or c.int("_sliding_window_pattern")
    if pattern:
        return [
            "full_attention" if (i + 1) % pattern == 0 else "sliding_attention"
            for i in range(layers)
        ]
    if c.model_type.startswith(("qwen2", "qwen3")):
        if not c.get("use_sliding_window"):
            return ["full_attention"] * layers
        top = c.int("max_window_layers")
        return ["full_attention" if i < top else "sliding_attention" for i in range(layers)]
    return ["sliding_attention"] * layers


def _moe_layers(c: _Config, layers: int) -> int:
    """How many layers route to experts (the rest keep a dense FFN)."""
    listed = c.get("moe_layers")
    if isinstance(listed, list):
        return len(listed)
    step = c.int("interleave_moe_layer_step") or c.int("decoder_sparse_step") or 1
    first_dense = c.int("first_k_dense_replace")
    if c.int("moe_layer_freq", 1) != 1:
        c.warn(f"moe_layer_freq {c.get('moe_layer_freq')} not understood; every layer taken as MoE")
    dense_only = set(c.get("mlp_only_layers") or [])
    if c.get("interleave_moe_layer_step"):  # Llama 4: layers step-1, 2·step-1, ...
        moe = [i for i in range(layers) if (i + 1) % step == 0]
    else:  # Qwen MoE (decoder_sparse_step), DeepSeek (first_k_dense_replace)
        moe = [i for i in range(first_dense, layers) if (i + 1) % step == 0]
    return len([i for i in moe if i not in dense_only])


def _architecture(c: _Config, name: str, source: str) -> Architecture:
    mt = c.model_type
    hidden, heads = c.int("hidden_size"), c.int("num_attention_heads")
    layers = c.int("num_hidden_layers")
    head_dim = c.int("qk_nope_head_dim") or c.int("head_dim") or hidden // heads
    ffn = c.int("intermediate_size_mlp") or c.int("intermediate_size") or c.int("n_inner")
    ffn = ffn or 4 * hidden
    experts = c.int("num_local_experts")
    expert_ffn = (c.int("moe_intermediate_size") or c.int("intermediate_size")) if experts else 0
    shared_ffn = c.int("shared_expert_intermediate_size") or c.int("n_shared_experts") * expert_ffn
    if experts and mt.startswith("llama4"):
        shared_ffn = expert_ffn  # one shared expert as wide as a routed one
    kinds = _layer_kinds(c, layers)
    window, chunk = c.int("sliding_window"), c.int("attention_chunk_size")
    sliding = kinds.count("sliding_attention") if window else 0
    chunked = kinds.count("chunked_attention") if chunk else 0
    if kinds.count("sliding_attention") and not window:
        c.warn("layer_types lists sliding layers but sliding_window is absent; taken as full")
    attention_bias = bool(c.get("attention_bias"))
    is_mla = bool(c.int("kv_lora_rank"))
    tied_default = mt.startswith(("gemma", "gpt2"))
    return Architecture(
        name=name,
        source=source,
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=c.int("num_key_value_heads") or heads,
        head_dim=head_dim,
        ffn=ffn,
        vocab=c.int("vocab_size"),
        max_context=c.int("max_position_embeddings"),
        gated_ffn=mt not in _UNGATED,
        tied_embeddings=bool(c.config.get("tie_word_embeddings", tied_default)),
        experts=experts,
        experts_per_token=c.int("num_experts_per_tok") if experts else 0,
        expert_ffn=expert_ffn,
        shared_ffn=shared_ffn,
        dense_layers=layers - _moe_layers(c, layers) if experts else 0,
        q_lora_rank=c.int("q_lora_rank"),
        kv_lora_rank=c.int("kv_lora_rank"),
        qk_rope_dim=c.int("qk_rope_head_dim") if is_mla else 0,
        v_head_dim=c.int("v_head_dim"),
        sliding_window=window if sliding else 0,
        sliding_layers=sliding,
        attention_chunk=chunk if chunked else 0,
        chunked_layers=chunked,
        attention_sinks=mt == "gpt_oss",
        qk_norm=mt.startswith(("qwen3", "gemma3")),
        o_bias=attention_bias and not mt.startswith("qwen"),
        expert_bias=mt == "gpt_oss",
        qkv_bias=attention_bias or mt.startswith("qwen2"),
        linear_bias=mt in _UNGATED,
        norm_bias=mt in _UNGATED,
        norms_per_layer=4 if mt.startswith(("gemma2", "gemma3")) else 2,
        learned_positions=c.int("max_position_embeddings") if mt in {"gpt2", "opt"} else 0,
        dtype=_dtype(c.get("torch_dtype") or c.get("dtype")),
    )


def _divisors(n: int, limit: int = 256) -> str:
    return ", ".join(str(d) for d in range(1, min(n, limit) + 1) if n % d == 0)


def _check_shape(c: _Config, path: Path) -> None:
    """Counts that are whole and positive, heads that divide the hidden size (where no head
    size is given) and a multiple of the KV heads, no more experts per token than experts:
    a model that cannot exist is refused, not estimated."""
    for key in (*_COUNTS, *_MAYBE_ZERO):
        value = c.get(key)
        least = 0 if key in _MAYBE_ZERO else 1
        whole = isinstance(value, int | float) and not isinstance(value, bool)
        if value is not None and not (whole and float(value).is_integer() and value >= least):
            raise ProfileError(
                path,
                f"{key} must be a whole number of at least {least}, got {value!r}",
                column=key,
            )
    hidden, heads = c.int("hidden_size"), c.int("num_attention_heads")
    kv_heads = c.int("num_key_value_heads") or heads
    sized = c.get("head_dim") is not None or c.get("qk_nope_head_dim") is not None
    if not sized and hidden % heads:
        raise ProfileError(
            path,
            f"num_attention_heads {heads} does not divide hidden_size {hidden} (and no head_dim "
            f"is given); head counts that divide it: {_divisors(hidden)}",
            column="num_attention_heads",
        )
    if heads % kv_heads:
        raise ProfileError(
            path,
            f"num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}; "
            f"KV head counts that divide it: {_divisors(heads)}",
            column="num_key_value_heads",
        )
    experts, top_k = c.int("num_local_experts"), c.int("num_experts_per_tok")
    if experts and top_k > experts:
        raise ProfileError(
            path,
            f"num_experts_per_tok {top_k} is more than num_local_experts {experts}; "
            f"valid: 1 to {experts}",
            column="num_experts_per_tok",
        )


def import_hf_config(path: str | Path, name: str | None = None) -> HfImport:
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
    warnings: list[str] = []
    outer = _Config(config, warnings.append)
    if isinstance(config.get("text_config"), dict):
        text = config["text_config"]
        dtype = text.get("torch_dtype") or config.get("torch_dtype") or config.get("dtype")
        config = {**text, "model_type": text.get("model_type") or outer.model_type}
        if dtype is not None:
            config["torch_dtype"] = dtype
        warnings += [f"{k} is not understood; ignored" for k in outer.unknown_keys()]
        if "vision_config" in outer.config:
            warnings.append("vision_config: the vision encoder is not counted")
    c = _Config(config, warnings.append)
    missing = [k for k in _REQUIRED if c.get(k) is None]
    if missing:
        raise ProfileError(
            path,
            f"missing key(s) {', '.join(missing)}; a decoder config needs {', '.join(_REQUIRED)}",
            column=missing[0],
        )
    _check_shape(c, path)
    warnings += [f"{k} is not understood; ignored" for k in c.unknown_keys()]
    if c.get("mlp_bias"):
        warnings.append("mlp_bias: the FFN biases are not counted (under 0.1 % of parameters)")
    quantization = c.get("quantization_config")
    if isinstance(quantization, dict):
        method = quantization.get("quant_method", "unknown")
        warnings.append(
            f"quantization_config ({method}) not applied: the weights are priced at --weights"
        )
    try:
        arch = _architecture(
            c,
            name or path.parent.name or path.stem,
            f"Hugging Face config {path.name} ({c.model_type or 'unknown model_type'})",
        )
    except (TypeError, ValueError) as exc:
        raise ProfileError(path, f"has a value of the wrong type ({exc})") from None
    except WorkloadModelError as exc:
        raise ProfileError(path, str(exc)) from None
    return HfImport(arch, tuple(f"{path}: {w}" for w in warnings))
