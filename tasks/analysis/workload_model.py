"""FLOPs, bytes and memory of a transformer workload, derived from its architecture.

The ranking is only as good as these figures, so the model avoids the mistakes common in public
calculators: the KV cache is sized with KV heads (GQA/MQA) or the MLA latent, never query
heads; an MoE step reads only the experts some token routes to; the LM head is counted; the
embedding table is gathered (a few rows), not read whole; bytes are decimal throughout.

Accounting (DESIGN.md, "The maths"), per step of ``batch`` sequences:

- every matmul reads its weight once per step and its input activation and writes its output
  once (elementwise work is fused): a ``tokens x k`` by ``k x n`` matmul is ``2·tokens·k·n``
  FLOPs and ``b_w·k·n + b_a·tokens·(k + n)`` bytes;
- attention costs ``2·H_q·(d_qk + d_v)`` FLOPs per (query, key) pair; decode reads the whole
  KV cache once per step and writes one token's keys and values; MLA decodes in the absorbed
  form (scores over the ``kv_lora_rank + rope`` latent), as serving engines run it;
- MoE layers touch ``E·(1 − (1 − k/E)^n)`` distinct experts for ``n`` tokens routed uniformly;
- prefill computes logits for the last prompt token only (what serving engines do);
- training is forward + backward (weights read twice, three times the matmul work and traffic;
  four with full recomputation), with ZeRO's mixed-precision optimizer state: gradients in the
  weight precision, fp32 master weights and two Adam moments, each read and written once.

Figures are per unit: per generated token (decode), per prompt token (prefill), per optimizer
step (training).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Final

from hardware_profiles.errors import MemwallError
from tasks.analysis.number_formats import BYTES_PER_ELEMENT

MODEL_PHASES: Final = ("decode", "prefill", "training")
UNITS: Final[Mapping[str, str]] = {"decode": "token", "prefill": "token", "training": "step"}
COMPONENTS: Final = (
    "weights",
    "kv_read",
    "kv_write",
    "attention",
    "lm_head",
    "activations",
    "optimizer_state",
)
# Share of a device's memory a model may fill: the rest goes to the runtime (CUDA context,
# allocator fragmentation, communication buffers).
DEFAULT_USABLE_MEMORY_FRACTION: Final = 0.9
# fp32 master weights and Adam's two moments (ZeRO, Rajbhandari et al. 2020, section 3.1).
_OPTIMIZER_BYTES_PER_PARAM: Final = 12.0
_LOGIT_BYTES: Final = 4.0


class WorkloadModelError(MemwallError):
    """An estimate asked for with arguments that describe no real run."""


@dataclass(frozen=True, kw_only=True)
class Architecture:
    """A decoder-only transformer, as its published config describes it.

    Dense models leave the MoE fields at 0; MoE layers have ``experts`` routed experts of width
    ``expert_ffn``, ``experts_per_token`` of them per token, plus shared experts of total width
    ``shared_ffn``; the first ``dense_layers`` layers keep a dense FFN of width ``ffn``. MLA
    (DeepSeek) is on when ``kv_lora_rank`` > 0; ``head_dim`` is then the no-RoPE query/key
    part and ``qk_rope_dim`` the RoPE part. ``sliding_layers`` of the layers attend over at
    most ``sliding_window`` tokens. ``dtype`` is the precision the checkpoint ships in
    (``torch_dtype``): the KV cache, embedding and LM head stay at it unless asked otherwise.
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
        if self.sliding_layers > self.layers:
            raise WorkloadModelError(f"{self.name}: sliding_layers exceeds layers")

    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

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
        full = self.layers - self.sliding_layers
        return full * context + self.sliding_layers * min(context, self.sliding_window)


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


@dataclass(frozen=True)
class Cost:
    flops: float
    bytes: float

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes


def matmul_cost(tokens: float, in_features: int, out_features: int, b_w: float, b_a: float) -> Cost:
    """One matmul over ``tokens`` rows: weight read once, input read and output written once."""
    return Cost(
        flops=2.0 * tokens * in_features * out_features,
        bytes=b_w * in_features * out_features + b_a * tokens * (in_features + out_features),
    )


def bytes_per_element(precision: str) -> float:
    """Bytes one stored element costs, its share of block scales included (number_formats)."""
    try:
        return BYTES_PER_ELEMENT[precision]
    except KeyError:
        raise WorkloadModelError(
            f"unknown precision {precision!r}; valid: {', '.join(BYTES_PER_ELEMENT)}"
        ) from None


def expected_distinct_experts(experts: int, top_k: int, tokens: float) -> float:
    """Experts of one layer that at least one of ``tokens`` uniformly routed tokens picks."""
    if experts <= 0:
        return 0.0
    return float(experts * (1.0 - (1.0 - top_k / experts) ** tokens))


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
    return params


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
        expert = sum(m.params for m in one_expert if m.name.startswith("expert_"))
        rest = sum(m.params for m in one_expert if not m.name.startswith("expert_"))
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


# --- the estimate --------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """One workload's cost per unit, by component, and what it needs in memory."""

    model: str
    phase: str
    unit: str
    batch: int
    context: int
    weights: str
    kv: str
    activations: str
    head: str
    components: Mapping[str, Cost]
    memory_footprint_bytes: float
    weight_bytes: float
    kv_cache_bytes: float
    kv_bytes_per_token: float
    parameters_total: float
    parameters_active: float
    distinct_experts_per_layer: float
    warnings: tuple[str, ...] = field(default=())

    @property
    def flops_per_unit(self) -> float:
        return sum(c.flops for c in self.components.values())

    @property
    def bytes_per_unit(self) -> float:
        return sum(c.bytes for c in self.components.values())

    @property
    def arithmetic_intensity(self) -> float:
        return self.flops_per_unit / self.bytes_per_unit

    @property
    def precision(self) -> str:
        """The precision the matmuls run at: that of their activations."""
        return self.activations

    def devices_needed(
        self, memory_bytes: float, usable_fraction: float = DEFAULT_USABLE_MEMORY_FRACTION
    ) -> int:
        """Devices of ``memory_bytes`` each whose usable memory holds the footprint."""
        return max(1, math.ceil(self.memory_footprint_bytes / (memory_bytes * usable_fraction)))

    def fits(
        self,
        memory_bytes: float,
        devices: int = 1,
        usable_fraction: float = DEFAULT_USABLE_MEMORY_FRACTION,
    ) -> bool:
        return self.devices_needed(memory_bytes, usable_fraction) <= devices

    def workload_columns(self) -> dict[str, object]:
        """The figures under the workloads table's column names."""
        return {
            "phase": self.phase,
            "precision": self.precision,
            "unit": self.unit,
            "flops_per_unit": self.flops_per_unit,
            "bytes_per_unit": self.bytes_per_unit,
            "memory_footprint_bytes": self.memory_footprint_bytes,
            "model_preset": self.model,
            "batch": self.batch,
            "context_tokens": self.context,
            "weight_precision": self.weights,
            "kv_precision": self.kv,
        }


def _activation_bytes_per_token(ops: list[Matmul], b_a: float) -> float:
    return sum(b_a * m.count * (m.in_features + m.out_features) for m in ops)


def _causal_keys_per_query(arch: Architecture, prompt: int) -> float:
    """Σ over layers of the keys an average prompt token attends to (causal, windowed)."""

    def mean_keys(window: int) -> float:
        if prompt <= window:
            return (prompt + 1) / 2
        return (window * (window + 1) / 2 + (prompt - window) * window) / prompt

    full = arch.layers - arch.sliding_layers
    windowed = arch.sliding_layers * mean_keys(arch.sliding_window) if arch.sliding_layers else 0
    return full * mean_keys(prompt) + windowed


def estimate(
    arch: Architecture,
    *,
    phase: str,
    batch: int = 1,
    context: int = 4096,
    weights: str = "bf16",
    kv: str | None = None,
    activations: str = "bf16",
    head: str | None = None,
    recompute: bool = False,
) -> Estimate:
    """Cost per unit of ``arch`` in ``phase``; pure, so a mitigation is just another call.

    ``context`` is the tokens each sequence attends over: the KV cache length in decode, the
    prompt length in prefill, the sequence length in training. Quantized checkpoints are
    counted as they ship: ``weights`` is the storage of the blocks' matmuls; the embedding and
    LM head (``head``) and the KV cache (``kv``) stay at the model's ``dtype`` unless asked,
    as serving engines keep them (``--weights fp8`` alone keeps a bf16 cache); weights wider
    than the dtype widen the head too. ``activations`` is the compute precision, the one the
    matmuls run at. ``recompute`` (training) recomputes the forward pass in the backward one
    instead of storing activations.
    """
    if phase not in MODEL_PHASES:
        raise WorkloadModelError(f"unknown phase {phase!r}; valid: {', '.join(MODEL_PHASES)}")
    if batch <= 0:
        raise WorkloadModelError(f"batch must be > 0, got {batch}")
    if context <= 0:
        raise WorkloadModelError(f"context must be > 0 tokens, got {context}")
    b_w, b_a = bytes_per_element(weights), bytes_per_element(activations)
    kv = arch.dtype if kv is None else kv
    if head is None:
        head = weights if b_w >= bytes_per_element(arch.dtype) else arch.dtype
    b_kv, b_head = bytes_per_element(kv), bytes_per_element(head)
    warnings = []
    if context > arch.max_context:
        warnings.append(
            f"context {context} exceeds {arch.name}'s maximum of {arch.max_context} tokens"
        )

    params = parameters(arch)
    h, hq, L = arch.hidden, arch.heads, arch.layers
    kv_layer_tok = arch.kv_elements_per_token_per_layer() * b_kv
    kv_per_token = L * kv_layer_tok
    tokens = batch * (1 if phase == "decode" else context)
    distinct = expected_distinct_experts(arch.experts, arch.experts_per_token, tokens)

    # Weights one step reads: every non-expert matmul, the experts some token routes to, the
    # gathered embedding rows, norms and biases.
    expert_params = arch.moe_layers * params.expert_per_layer * arch.experts
    touched_experts = arch.moe_layers * params.expert_per_layer * distinct
    untied_head = 0.0 if arch.tied_embeddings else params.lm_head
    block_params = params.total - params.embedding - untied_head - expert_params
    step_weight_bytes = b_w * (block_params + touched_experts) + b_head * tokens * h
    lm_head_bytes = b_head * params.lm_head
    head_params = params.embedding + untied_head
    weight_bytes = b_w * (params.total - head_params) + b_head * head_params

    layer_ops = attention_matmuls(arch)
    ops_by_layer = [(arch.dense_layers if arch.is_moe else L, dense_ffn_matmuls(arch))]
    if arch.is_moe:
        ops_by_layer.append((arch.moe_layers, moe_matmuls(arch, arch.experts_per_token)))
    matmul_flops_tok = 2.0 * (
        L * sum(m.params * m.count for m in layer_ops)
        + sum(n * sum(m.params * m.count for m in ops) for n, ops in ops_by_layer)
    )
    act_tok = L * _activation_bytes_per_token(layer_ops, b_a) + sum(
        n * _activation_bytes_per_token(ops, b_a) for n, ops in ops_by_layer
    )
    # Attention reads the queries and writes its output; keys and values are cache traffic
    # (kv_read, kv_write) in inference and part of the qkv matmul's output in training.
    act_tok += L * b_a * hq * (arch.qk_dim + arch.v_dim)
    lm_head_flops_tok = 2.0 * h * arch.vocab
    lm_head_act_tok = b_a * h + _LOGIT_BYTES * arch.vocab

    if arch.is_mla and phase == "decode":
        pair_flops = 2.0 * hq * (2 * arch.kv_lora_rank + arch.qk_rope_dim)
    else:
        pair_flops = 2.0 * hq * (arch.qk_dim + arch.v_dim)

    all_ops = layer_ops + [m for _, ops in ops_by_layer for m in ops]
    widest = max(m.in_features + m.out_features for m in all_ops)

    if phase == "decode":
        per = float(batch)
        cached = arch.cached_tokens(context)
        components = {
            "weights": Cost(batch * matmul_flops_tok, step_weight_bytes),
            "kv_read": Cost(0.0, batch * cached * kv_layer_tok),
            "kv_write": Cost(0.0, batch * kv_per_token),
            "attention": Cost(batch * cached * pair_flops, 0.0),
            "lm_head": Cost(batch * lm_head_flops_tok, lm_head_bytes),
            "activations": Cost(0.0, batch * (act_tok + lm_head_act_tok)),
            "optimizer_state": Cost(0.0, 0.0),
        }
        kv_cache = batch * cached * kv_layer_tok
        working = b_a * batch * widest + _LOGIT_BYTES * batch * arch.vocab
        footprint = weight_bytes + kv_cache + working
    elif phase == "prefill":
        per = float(tokens)
        keys = _causal_keys_per_query(arch, context)
        components = {
            "weights": Cost(tokens * matmul_flops_tok, step_weight_bytes),
            "kv_read": Cost(0.0, 0.0),
            "kv_write": Cost(0.0, tokens * kv_per_token),
            "attention": Cost(tokens * keys * pair_flops, 0.0),
            "lm_head": Cost(batch * lm_head_flops_tok, lm_head_bytes),
            "activations": Cost(0.0, tokens * act_tok + batch * lm_head_act_tok),
            "optimizer_state": Cost(0.0, 0.0),
        }
        kv_cache = batch * arch.cached_tokens(context) * kv_layer_tok
        working = b_a * tokens * widest + _LOGIT_BYTES * batch * arch.vocab
        footprint = weight_bytes + kv_cache + working
    else:
        per = 1.0
        passes = 4.0 if recompute else 3.0  # forward (+ recomputed forward) + 2x backward
        weight_reads = 3.0 if recompute else 2.0
        keys = _causal_keys_per_query(arch, context)
        p = params.total
        components = {
            "weights": Cost(passes * tokens * matmul_flops_tok, weight_reads * step_weight_bytes),
            "kv_read": Cost(0.0, 0.0),
            "kv_write": Cost(0.0, 0.0),
            "attention": Cost(passes * tokens * keys * pair_flops, 0.0),
            "lm_head": Cost(3.0 * tokens * lm_head_flops_tok, weight_reads * lm_head_bytes),
            "activations": Cost(0.0, passes * tokens * (act_tok + lm_head_act_tok)),
            # Gradients written and read, master weights and moments read and written, the
            # new weights written.
            "optimizer_state": Cost(0.0, 3 * weight_bytes + 2 * _OPTIMIZER_BYTES_PER_PARAM * p),
        }
        kv_cache = 0.0
        # Stored activations per token and layer: 34·h bytes at 16 bits (Korthikanti et al.
        # 2022, eq. 1, without the attention-score term that flash attention never stores);
        # only the layer input (2·h bytes) under full recomputation.
        stored = (2 if recompute else 34) * h * (b_a / 2) * L * tokens
        working = stored + _LOGIT_BYTES * tokens * arch.vocab
        footprint = 2 * weight_bytes + _OPTIMIZER_BYTES_PER_PARAM * p + working

    per_unit = {name: Cost(c.flops / per, c.bytes / per) for name, c in components.items()}
    return Estimate(
        model=arch.name,
        phase=phase,
        unit=UNITS[phase],
        batch=batch,
        context=context,
        weights=weights,
        kv=kv,
        activations=activations,
        head=head,
        components={name: per_unit[name] for name in COMPONENTS},
        memory_footprint_bytes=footprint,
        weight_bytes=weight_bytes,
        kv_cache_bytes=kv_cache,
        kv_bytes_per_token=kv_per_token,
        parameters_total=params.total,
        parameters_active=params.active_per_token,
        distinct_experts_per_layer=distinct,
        warnings=tuple(warnings),
    )
