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
from dataclasses import dataclass, field
from typing import Final

from tasks.analysis.workload.architecture import Architecture as Architecture
from tasks.analysis.workload.architecture import (
    Matmul,
    attention_matmuls,
    dense_ffn_matmuls,
    moe_matmuls,
)
from tasks.analysis.workload.architecture import WorkloadModelError as WorkloadModelError
from tasks.analysis.workload.architecture import parameters as parameters
from tasks.analysis.workload.number_formats import BYTES_PER_ELEMENT

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


# --- the estimate --------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """One workload's cost per unit, by component, and what it needs in memory."""

    model: str
    layers: int
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
            "layers": self.layers,
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

    def mean_chunk_keys(chunk: int) -> float:
        whole, rest = divmod(prompt, chunk)
        return (whole * chunk * (chunk + 1) / 2 + rest * (rest + 1) / 2) / prompt

    full = arch.layers - arch.sliding_layers - arch.chunked_layers
    windowed = arch.sliding_layers * mean_keys(arch.sliding_window) if arch.sliding_layers else 0
    chunked = (
        arch.chunked_layers * mean_chunk_keys(arch.attention_chunk) if arch.chunked_layers else 0
    )
    return full * mean_keys(prompt) + windowed + chunked


def head_precision(arch: Architecture, weights: str) -> str:
    """The embedding/LM head's storage as checkpoints ship it: the model's dtype, unless the
    weights are wider (a float32 run widens the head too); quantization leaves it alone."""
    return weights if bytes_per_element(weights) >= bytes_per_element(arch.dtype) else arch.dtype


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
        head = head_precision(arch, weights)
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
        layers=arch.layers,
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
