"""Memory per device of a training run, by term, each from its published formula.

**Weights, gradients, optimizer state** (Rajbhandari et al. 2020, "ZeRO", arXiv 1910.02054,
sections 3.1 and 5): ``P_dev · bytes`` of the recipe (:mod:`tasks.analysis.training.recipe`),
``P_dev`` the parameters one device holds: the layers' share ``/(tp·pp)`` (experts also
``/ep``) plus the embedding (first stage) or LM head (last stage) ``/tp``. ZeRO stage 1
divides the optimizer state by the sharding group ``g = dp·cp`` (experts: ``dp·cp/ep``), stage
2 also the gradients, stage 3 (FSDP) also the weights, which then need a gathered copy of the
layers in flight: two layers' weights (the one computing and the one prefetched).

**Activations** (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large
Transformer Models", arXiv 2205.05198, section 4): one layer of a GPT-3-shaped transformer
stores ``s·b·h·(34 + 5·a·s/h)`` bytes for a micro-batch of b sequences of s tokens (16-bit
activations, hidden h, a heads): ``34·s·b·h`` for the tensors its matmuls, norms, GeLU and
dropouts saved, ``5·a·s²·b`` for the attention scores, softmax and its dropout mask. Tensor
parallelism with sequence parallelism divides all of it by t; selective recomputation drops
the ``5·a·s/h`` term (the attention core is recomputed; FlashAttention never stores it
either); full recomputation keeps only each layer's input, ``2·s·b·h`` (``/t`` with sequence
parallelism), plus one layer's activations while it is recomputed. The 34 is written out per
tensor here so that SwiGLU (a gate doubles the activation's input), GQA (smaller K and V), MoE
(each token's top-k experts) and the absence of dropout (Llama-family recipes) change it as
they do: per token and layer, with ``b_m`` the bytes of a matmul input (2 in bf16, 1 when FP8
matmuls keep their inputs in FP8, as Transformer Engine does):

    2h (norm 1 in) + b_m·h (QKV in) + 2·(q + k + v) (attention in) + b_m·q_out (O in)
    + 2h (norm 2 in) + b_m·h (FFN in) + 2·f·(2 if gated else 1) (activation in)
    + b_m·f (down in) + 2·h·dropout (two 1-byte masks)

which is 34·h for GPT-3 (h heads of h/a, f = 4h, dropout). Context parallelism divides s by
cp. The pipeline's first stage holds the most: the activations of ``min(p, m)`` micro-batches
of its ``L/p`` layers under 1F1B, times ``1 + (p−1)/(p·v)`` with v interleaved stages
(Korthikanti et al. 2022, section 4.2.3), so ``L`` layers' worth in all; counted here chunk
by chunk as Megatron-LM's schedule runs them (:func:`layers_in_flight`), so that uneven
stages (Llama 3's first chunk holding only the embedding) store what they hold. Not counted: the
last stage's logits (``4·s·b·V/t`` in fp32, smaller than the first stage's activations at
the depths pipelines are used for), allocator fragmentation and communication buffers (the
10 % of memory held back as unusable).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Final

from tasks.analysis.training.layout import TrainingRun, rank_layers
from tasks.analysis.training.recipe import OPTIMIZERS
from tasks.analysis.workload.architecture import Architecture, ParameterCount, parameters
from tasks.analysis.workload.workload_model import bytes_per_element

MEMORY_TERMS: Final = ("weights", "gradients", "optimizer_state", "activations")
_ACTIVATION_BYTES: Final = 2.0  # norms, softmax and activation inputs stay 16-bit
_FLASH_FREE: Final = ("selective", "full")


@dataclass(frozen=True)
class ParameterSplit:
    """Parameters one device holds (first pipeline stage), and how they shard."""

    dense: float  # attention, norms, dense FFNs, router, shared experts: /(tp·pp)
    experts: float  # routed experts: /(ep·tp·pp)
    edge: float  # embedding (first stage) or LM head (last stage): /tp
    layer: float  # one layer's parameters on this device (ZeRO-3's gathered copy)

    @property
    def total(self) -> float:
        return self.dense + self.experts + self.edge


@lru_cache(maxsize=512)
def counted_parameters(arch: Architecture) -> ParameterCount:
    """``parameters(arch)``, counted once per architecture: a backtest's fit predicts every
    run thousands of times."""
    return parameters(arch)


@lru_cache(maxsize=4096)
def parameter_split(arch: Architecture, run: TrainingRun) -> ParameterSplit:
    """The first pipeline stage's parameters: its layers' share (``1/p`` on even stages, its
    chunks' layers over L on uneven ones) and the embedding (with pp = 1 the one stage holds
    the LM head too)."""
    lay = run.layout
    counted = counted_parameters(arch)
    lm_head = 0.0 if arch.tied_embeddings else counted.lm_head
    experts = arch.moe_layers * arch.experts * counted.expert_per_layer
    dense = counted.total - counted.embedding - lm_head - experts
    edge = counted.embedding + lm_head if lay.pp == 1 else max(counted.embedding, lm_head)
    share = sum(rank_layers(arch, run, 0)) / arch.layers  # 1/p on even stages
    return ParameterSplit(
        dense=dense * share / lay.tp,
        experts=experts * share / (lay.tp * lay.ep),
        edge=edge / lay.tp,
        layer=(dense / arch.layers + experts / max(arch.layers, 1) / lay.ep) / lay.tp,
    )


def layer_activation_bytes_per_token(arch: Architecture, run: TrainingRun) -> float:
    """Bytes one layer stores per token for backward with no recomputation, no parallelism
    and no attention-score term (the written-out 34·h of the module docstring)."""
    h = arch.hidden
    b_m = min(bytes_per_element(run.compute), _ACTIVATION_BYTES)
    two = _ACTIVATION_BYTES
    q = arch.heads * arch.qk_dim
    kv = (
        arch.heads * (arch.qk_dim + arch.v_dim)
        if arch.is_mla
        else arch.kv_heads * (arch.qk_dim + arch.v_dim)
    )
    dropout = 0.0 if arch.gated_ffn else 2.0 * h  # GPT-2/3 recipes train with dropout 0.1
    attention = two * h + b_m * h + two * (q + kv) + b_m * arch.heads * arch.v_dim
    gate = 2 if arch.gated_ffn else 1

    def ffn(width: float, copies: float) -> float:
        return copies * (b_m * h + two * width * gate + b_m * width)

    if arch.is_moe:
        moe = ffn(arch.expert_ffn, arch.experts_per_token) + (
            ffn(arch.shared_ffn, 1.0) if arch.shared_ffn else 0.0
        )
        dense_share = arch.dense_layers / arch.layers
        mlp = dense_share * ffn(arch.ffn, 1.0) + (1 - dense_share) * moe
    else:
        mlp = ffn(arch.ffn, 1.0)
    return attention + two * h + mlp + dropout


def attention_score_bytes_per_token(arch: Architecture, sequence: float) -> float:
    """Korthikanti's ``5·a·s`` per token: scores, softmax, its dropout mask (no FlashAttention)."""
    return 5.0 * arch.heads * sequence


def op_checkpoint_bytes_per_token(arch: Architecture) -> float:
    """Bytes one layer keeps per token under torchtitan's per-op selective checkpointing,
    which saves the outputs of attention and of every other weight matmul and recomputes the
    rest from the layer's input: the input (``2h``), the Q and V projections' outputs (the
    K projection is the second matmul), attention's output, and per FFN copy the gate
    projection's output and the down projection's (the up projection is recomputed), all
    16-bit."""
    two, h = _ACTIVATION_BYTES, arch.hidden
    q = arch.heads * arch.qk_dim
    v = arch.heads * arch.v_dim if arch.is_mla else arch.kv_heads * arch.v_dim
    attention = two * (h + q + v + arch.heads * arch.v_dim)

    def ffn(width: float, copies: float) -> float:
        return copies * two * (width + h)

    if arch.is_moe:
        moe = ffn(arch.expert_ffn, arch.experts_per_token) + (
            ffn(arch.shared_ffn, 1.0) if arch.shared_ffn else 0.0
        )
        dense_share = arch.dense_layers / arch.layers
        return attention + dense_share * ffn(arch.ffn, 1.0) + (1 - dense_share) * moe
    return attention + ffn(arch.ffn, 1.0)


def layer_activation_bytes(arch: Architecture, run: TrainingRun) -> float:
    """One layer's stored activations for one micro-batch on one device, by recompute policy:
    all of them (``none``), all but the attention scores (``selective``), the layer's input
    only (``full``), a layer of each in turn (``selective-layer``: every second layer
    checkpointed whole), or what :func:`op_checkpoint_bytes_per_token` keeps
    (``selective-op``)."""
    lay = run.layout
    tokens = run.sequence / lay.cp * run.micro_batch
    if run.recompute == "selective-layer":
        whole = layer_activation_bytes(arch, replace(run, recompute="none"))
        return (whole + layer_activation_bytes(arch, replace(run, recompute="full"))) / 2
    if run.recompute == "full":
        return _ACTIVATION_BYTES * arch.hidden * tokens / lay.tp
    if run.recompute == "selective-op":
        return op_checkpoint_bytes_per_token(arch) * tokens / lay.tp
    per_token = layer_activation_bytes_per_token(arch, run)
    if run.recompute == "none" and not run.flash_attention:
        per_token += attention_score_bytes_per_token(arch, run.sequence / lay.cp)
    return per_token * tokens / lay.tp


@lru_cache(maxsize=4096)
def layers_in_flight(arch: Architecture, run: TrainingRun) -> float:
    """Layer-micro-batches whose activations the first pipeline rank holds at its peak, by
    playing Megatron-LM's schedule (``megatron/core/pipeline_parallel/schedules.py``): rank 0
    runs ``W = min(m·v, 2·(p−1) + (v−1)·p)`` forward chunk-micro-batches before its first
    backward (``W = min(m, p−1)`` without interleaving; all ``m·v`` when ``m = p``), then one
    forward and one backward at a time; forward number k runs chunk ``(k mod p·v) // p`` of
    the rank and backward number k chunk ``v − 1 −`` that. Each chunk holds the layers
    :func:`rank_layers` gives it, so a first chunk left with only the embedding (Llama 3's
    uneven stages) stores nothing. On even stages with ``m > p`` this is Korthikanti's
    (section 4.2.3) ``(W+1)·L/(p·v) = L·(1 + (p−1)/(p·v))``, and ``L`` without
    interleaving."""
    lay = run.layout
    p, v, m = lay.pp, lay.vp, run.micro_batches
    if p == 1:
        return float(arch.layers)
    chunks = rank_layers(arch, run, 0)
    total = m * v
    if v == 1:
        warmup = min(m, p - 1)
    elif m == p:
        warmup = total
    else:
        warmup = min(total, 2 * (p - 1) + (v - 1) * p)

    def chunk(k: int, forward: bool) -> int:
        j = (k % (p * v)) // p
        return j if forward else v - 1 - j

    held = float(sum(chunks[chunk(k, True)] for k in range(warmup)))
    peak = held
    # The steady state repeats every p·v steps: two periods past the warm-up find its peak.
    for k in range(warmup, min(total, warmup + 2 * p * v)):
        held += chunks[chunk(k, True)]
        peak = max(peak, held)
        held -= chunks[chunk(k - warmup, False)]
    return peak


@dataclass(frozen=True)
class Memory:
    """Bytes per device (the first pipeline stage, the fullest), by term."""

    weights: float
    gradients: float
    optimizer_state: float
    activations: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer_state + self.activations

    def as_json(self) -> dict[str, float]:
        return {
            "weights_bytes": self.weights,
            "gradients_bytes": self.gradients,
            "optimizer_state_bytes": self.optimizer_state,
            "activations_bytes": self.activations,
            "total_bytes": self.total,
        }


def memory_per_device(arch: Architecture, run: TrainingRun) -> Memory:
    """The first pipeline stage's memory by term (see the module docstring)."""
    lay = run.layout
    recipe = OPTIMIZERS[run.optimizer]
    split = parameter_split(arch, run)
    group = lay.dp * lay.cp
    expert_group = max(group // lay.ep, 1)

    def sharded(stage: int) -> float:
        """Parameters whose copy of this term the device keeps, at a ZeRO stage >= ``stage``."""
        if run.zero < stage:
            return split.total
        return (split.dense + split.edge) / group + split.experts / expert_group

    gathered = 2 * split.layer if run.zero >= 3 and group > 1 else 0.0
    activations = layer_activation_bytes(arch, run) * layers_in_flight(arch, run)
    if run.recompute in ("full", "selective-layer"):
        # The layer being recomputed holds its activations while its backward runs.
        activations += layer_activation_bytes(arch, replace(run, recompute="selective"))
    return Memory(
        weights=recipe.weight_bytes * (sharded(3) + gathered),
        gradients=recipe.gradient_bytes * sharded(2),
        optimizer_state=recipe.optimizer_bytes * sharded(1),
        activations=activations,
    )
