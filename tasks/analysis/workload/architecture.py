"""A decoder-only transformer as its published config describes it, and what it is made of:
the matmuls of a layer and the parameters they hold.

Kept apart from the cost model (``workload_model``) because the config.json import and the
presets describe architectures and the estimate prices them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from hardware_profiles.errors import MemwallError

# Dense, mixture of experts, and mixture of experts with multi-head latent attention.
ARCHITECTURE_CLASSES: Final = ("dense", "MoE", "MLA-MoE")


class WorkloadModelError(MemwallError):
    """An estimate asked for with arguments that describe no real run."""


@dataclass(frozen=True, kw_only=True)
class Architecture:
    """A decoder-only transformer, as its published config describes it.

    Dense models leave the MoE fields at 0; MoE layers have ``experts`` routed experts of width
    ``expert_ffn``, ``experts_per_token`` of them per token, plus shared experts of total width
    ``shared_ffn``; ``dense_layers`` of the layers keep a dense FFN of width ``ffn`` (the first
    k in DeepSeek, every other one in Llama-4 Maverick: costs do not depend on where they
    sit). MLA (DeepSeek) is on when ``kv_lora_rank`` > 0; ``head_dim`` is then the no-RoPE
    query/key part and ``qk_rope_dim`` the RoPE part. ``sliding_layers`` of the layers attend
    over at most the last ``sliding_window`` tokens (gpt-oss, Gemma 2/3); ``chunked_layers``
    only within the current chunk of ``attention_chunk`` tokens (Llama-4's RoPE layers); the
    other layers attend over the whole context. ``attention_sinks`` adds one learned logit per
    head and layer (gpt-oss); ``qk_norm`` a norm of width ``head_dim`` on queries and keys
    (Qwen3, Gemma 3); ``o_bias`` a bias on the output projection; ``expert_bias`` biases on
    the router and every expert's projections (gpt-oss). ``dtype`` is the precision the
    checkpoint ships in (``torch_dtype``): the KV cache, embedding and LM head stay at it
    unless asked otherwise.
    """

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    max_context: int
    gated_ffn: bool = True
    tied_embeddings: bool = False
    experts: int = 0
    experts_per_token: int = 0
    expert_ffn: int = 0
    shared_ffn: int = 0
    dense_layers: int = 0
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_rope_dim: int = 0
    v_head_dim: int = 0
    sliding_window: int = 0
    sliding_layers: int = 0
    attention_chunk: int = 0
    chunked_layers: int = 0
    attention_sinks: bool = False
    qk_norm: bool = False
    o_bias: bool = False
    expert_bias: bool = False
    qkv_bias: bool = False
    linear_bias: bool = False
    norms_per_layer: int = 2
    norm_bias: bool = False
    learned_positions: int = 0
    dtype: str = "bf16"
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("layers", "hidden", "heads", "kv_heads", "head_dim", "vocab", "max_context"):
            if getattr(self, name) <= 0:
                raise WorkloadModelError(f"{self.name}: {name} must be > 0")
        if self.is_moe and not 0 < self.experts_per_token <= self.experts:
            raise WorkloadModelError(
                f"{self.name}: experts_per_token must be in 1..{self.experts}, "
                f"got {self.experts_per_token}"
            )
        if self.sliding_layers + self.chunked_layers > self.layers:
            raise WorkloadModelError(f"{self.name}: sliding_layers + chunked_layers exceed layers")
        if self.is_moe and self.dense_layers > self.layers:
            raise WorkloadModelError(f"{self.name}: dense_layers exceeds layers")

    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def architecture_class(self) -> str:
        """Which of :data:`ARCHITECTURE_CLASSES` the model is: the backtest reports its error
        per class and the date bands take their class's spread, since a fit dominated by dense
        runs says little about fine-grained MoE with a compressed (MLA) cache."""
        if not self.is_moe:
            return "dense"
        return "MLA-MoE" if self.is_mla else "MoE"

    @property
    def qk_dim(self) -> int:
        return self.head_dim + self.qk_rope_dim

    @property
    def v_dim(self) -> int:
        return self.v_head_dim or self.head_dim

    @property
    def moe_layers(self) -> int:
        return self.layers - self.dense_layers if self.is_moe else 0

    def kv_elements_per_token_per_layer(self) -> int:
        """Keys and values one token leaves in one layer's cache (elements)."""
        if self.is_mla:
            return self.kv_lora_rank + self.qk_rope_dim
        return self.kv_heads * (self.qk_dim + self.v_dim)

    def cached_tokens(self, context: int) -> int:
        """Σ over layers of the tokens each layer keeps for a sequence of ``context`` tokens."""
        full = self.layers - self.sliding_layers - self.chunked_layers
        return (
            full * context
            + self.sliding_layers * min(context, self.sliding_window)
            + self.chunked_layers * min(context, self.attention_chunk)
        )


@dataclass(frozen=True)
class Matmul:
    """One weight matmul of a layer: ``count`` of them run per token (experts: top-k)."""

    name: str
    in_features: int
    out_features: int
    count: float = 1.0

    @property
    def params(self) -> int:
        return self.in_features * self.out_features


# --- per-layer structure -----------------------------------------------------------------


def attention_matmuls(arch: Architecture) -> list[Matmul]:
    h, hq = arch.hidden, arch.heads
    if arch.is_mla:
        ops = []
        if arch.q_lora_rank:
            ops += [
                Matmul("q_a", h, arch.q_lora_rank),
                Matmul("q_b", arch.q_lora_rank, hq * arch.qk_dim),
            ]
        else:
            ops.append(Matmul("q", h, hq * arch.qk_dim))
        return [
            *ops,
            Matmul("kv_a", h, arch.kv_lora_rank + arch.qk_rope_dim),
            Matmul("kv_b", arch.kv_lora_rank, hq * (arch.head_dim + arch.v_dim)),
            Matmul("o", hq * arch.v_dim, h),
        ]
    qkv = hq * arch.qk_dim + arch.kv_heads * (arch.qk_dim + arch.v_dim)
    return [Matmul("qkv", h, qkv), Matmul("o", hq * arch.v_dim, h)]


def _ffn_matmuls(h: int, width: int, gated: bool, prefix: str, count: float) -> list[Matmul]:
    up = Matmul(f"{prefix}gate_up" if gated else f"{prefix}up", h, (2 if gated else 1) * width)
    return [replace(up, count=count), Matmul(f"{prefix}down", width, h, count)]


def dense_ffn_matmuls(arch: Architecture) -> list[Matmul]:
    return _ffn_matmuls(arch.hidden, arch.ffn, arch.gated_ffn, "", 1.0)


def moe_matmuls(arch: Architecture, experts_run: float) -> list[Matmul]:
    """An MoE layer's matmuls; each expert's pair runs ``experts_run`` times per token (top-k)."""
    ops = [Matmul("router", arch.hidden, arch.experts)]
    ops += _ffn_matmuls(arch.hidden, arch.expert_ffn, arch.gated_ffn, "expert_", experts_run)
    if arch.shared_ffn:
        ops += _ffn_matmuls(arch.hidden, arch.shared_ffn, arch.gated_ffn, "shared_", 1.0)
    return ops


def _extra_layer_params(arch: Architecture) -> int:
    """Norms and biases of one layer (bytes, not FLOPs, matter for these)."""
    h = arch.hidden
    params = arch.norms_per_layer * h * (2 if arch.norm_bias else 1)
    if arch.is_mla:
        params += arch.kv_lora_rank + (arch.q_lora_rank or 0)  # latent norms
    if arch.qkv_bias or arch.linear_bias:
        params += arch.heads * arch.qk_dim + arch.kv_heads * (arch.qk_dim + arch.v_dim)
    if arch.linear_bias:
        params += h + (arch.ffn if not arch.is_moe else 0) + h
    elif arch.o_bias:
        params += h
    if arch.attention_sinks:
        params += arch.heads
    if arch.qk_norm:
        params += 2 * arch.qk_dim
    return params


def _expert_bias_params(arch: Architecture) -> tuple[int, int]:
    """(Router bias, one expert's biases): a bias per output of each projection."""
    if not arch.expert_bias:
        return 0, 0
    return arch.experts, (2 if arch.gated_ffn else 1) * arch.expert_ffn + arch.hidden


@dataclass(frozen=True)
class ParameterCount:
    total: float
    active_per_token: float
    embedding: float
    lm_head: float
    expert_per_layer: float


def parameters(arch: Architecture) -> ParameterCount:
    """Total parameters, and those one token's matmuls use (LM head included, embedding not)."""
    h = arch.hidden
    attention = sum(m.params for m in attention_matmuls(arch))
    dense_ffn = sum(m.params for m in dense_ffn_matmuls(arch))
    extra = _extra_layer_params(arch)
    total = arch.layers * (attention + extra)
    active = arch.layers * attention
    expert = 0
    if arch.is_moe:
        one_expert = moe_matmuls(arch, 1.0)
        router_bias, expert_bias = _expert_bias_params(arch)
        expert = sum(m.params for m in one_expert if m.name.startswith("expert_")) + expert_bias
        rest = sum(m.params for m in one_expert if not m.name.startswith("expert_"))
        rest += router_bias
        total += arch.dense_layers * dense_ffn + arch.moe_layers * (rest + arch.experts * expert)
        active += arch.dense_layers * dense_ffn + arch.moe_layers * (
            rest + arch.experts_per_token * expert
        )
    else:
        total += arch.layers * dense_ffn
        active += arch.layers * dense_ffn
    embedding = arch.vocab * h + arch.learned_positions * h
    lm_head = arch.vocab * h
    final_norm = h * (2 if arch.norm_bias else 1)
    total += embedding + final_norm + (0 if arch.tied_embeddings else lm_head)
    return ParameterCount(
        total=float(total),
        active_per_token=float(active + lm_head),
        embedding=float(embedding),
        lm_head=float(lm_head),
        expert_per_layer=float(expert),
    )
