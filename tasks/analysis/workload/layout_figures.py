"""What one device of a serving layout holds, reads, computes and sends in one step: the
figures :mod:`tasks.analysis.workload.layout` leaves out of what a layout is.

What lives where, per device (one stage; the figures the step time is taken from are those of
the busiest device of a stage over all layers, since a step passes every stage):

- attention weights (and norms) split ``tp`` ways, copied on every attention group;
- dense FFNs, shared experts, the router and the LM head split over the whole stage (engines
  run them tensor parallel over every rank, gathering the groups' tokens);
- routed experts split over the stage: ``ep`` ways whole, else ``tp`` ways each;
- the KV cache of the group's sequences (the busiest group holds ``ceil(B / dp_attention)``),
  split by KV heads up to ``tp`` (a degree above the KV heads copies them, as vLLM does); an MLA
  latent is not split by heads, so each device of a group holds the group's whole cache.

Collectives per step (counted as the engines call them, per layer):

- attention: one all-reduce over the ``tp`` devices of a group (``tp`` > 1), message =
  the group's tokens · hidden · activation bytes;
- FFN of a dense layer, and an MoE layer with ``ep`` = 1: one all-reduce over the stage
  (dp_attention = 1: the second tensor-parallel all-reduce; dp_attention > 1: the all-gather of
  the groups' tokens and the reduce-scatter after the FFN, which move what one all-reduce of all
  the stage's tokens moves);
- MoE layer with ``ep`` > 1: two all-to-alls, dispatch and combine, each moving
  tokens · hidden · top-k · activation bytes over the replica (the share ``(ep − 1)/ep`` bound
  for other devices crosses the link);
- pipeline: ``pp − 1`` point-to-point sends of the step's activations.

Load imbalance: with ``ep`` > 1 a step waits for the busiest expert rank. Tokens · top-k
copies routed uniformly over ``ep`` ranks: a rank's load is Binomial(n, 1/ep), and the expected
busiest of ``ep`` ranks is Σ_k (1 − F(k)^ep), the balls-into-bins maximum (Raab & Steger 1998)
with the ranks taken as independent. Their loads are negatively associated, so P(all ≤ k) ≤
F(k)^ep (Joag-Dev & Proschan 1983) and this is a lower bound: 74.8 for 512 copies over 8 ranks,
where a simulation of the multinomial gives 75.6 (1 % more). Real routers are skewed, so
uniform routing understates the busiest rank further; EPLB-style expert replication narrows it
back. The routed experts' FLOPs and the all-to-all bytes a device
receives are scaled by busiest / mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy.stats import binom

from tasks.analysis.workload.architecture import (
    Architecture,
    attention_matmuls,
    moe_matmuls,
    parameters,
)
from tasks.analysis.workload.layout import Layout, check_layout
from tasks.analysis.workload.number_formats import BYTES_PER_ELEMENT
from tasks.analysis.workload.workload_model import Estimate

ALLTOALLS_PER_MOE_LAYER: Final = 2  # dispatch and combine


def expected_busiest_rank(copies: float, ranks: int) -> float:
    """Expected load of the busiest of ``ranks`` ranks when ``copies`` token copies are routed
    uniformly (see the module docstring): Σ_k (1 − F(k)^ranks), F the Binomial(copies,
    1/ranks) CDF, summed only where the term is neither 1 nor 0 to double precision."""
    if ranks <= 1 or copies <= 0:
        return float(copies)
    n = round(copies)
    p = 1.0 / ranks
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    low, high = max(0, int(mean - 12 * sd) - 1), min(n, int(mean + 12 * sd) + 2)
    k = np.arange(low, high)
    return float(low + np.sum(1.0 - binom.cdf(k, n, p) ** ranks))


@dataclass(frozen=True)
class Collective:
    """One kind of collective a step calls: ``calls`` per step over ``group`` devices, each
    moving ``message_bytes`` (all-reduce: the buffer; all-to-all and send: what the busiest
    device sends over its link)."""

    kind: str  # all-reduce | all-to-all | send
    group: int
    calls: int
    message_bytes: float

    def link_bytes(self) -> float:
        """Bytes one device moves through its link per call (ring all-reduce: 2(n−1)/n)."""
        if self.kind == "all-reduce":
            return 2 * (self.group - 1) / self.group * self.message_bytes
        return self.message_bytes


@dataclass(frozen=True)
class LayoutFigures:
    """One step of one estimate under a layout: what the busiest device holds, reads and
    computes (bytes and FLOPs summed over the stages a step passes), and the collectives."""

    layout: Layout
    weight_bytes_per_device: float
    kv_bytes_per_device: float
    activation_bytes_per_device: float
    step_bytes_per_device: float
    step_flops_per_device: float
    weight_read_bytes_per_device: float  # the part of step_bytes_per_device that is weights
    attention_flops_per_device: float  # the part of step_flops_per_device that is attention
    # The routed experts' part of weight_read_bytes_per_device and of step_flops_per_device:
    # the grouped GEMM that runs at its own efficiency in decode (supply.predict).
    expert_read_bytes_per_device: float
    expert_flops_per_device: float
    alltoall_bytes_per_step: (
        float  # tokens · hidden · top-k · b_a, dispatch and combine, all MoE layers
    )
    allreduce_bytes_per_step: float  # Σ all-reduce buffers over the layers
    expert_load_mean: float  # token copies per expert rank at the step
    expert_load_busiest: float
    collectives: tuple[Collective, ...]

    @property
    def imbalance(self) -> float:
        return self.expert_load_busiest / self.expert_load_mean if self.expert_load_mean else 1.0

    def calls_per_layer(self, layers: int) -> float:
        return sum(c.calls for c in self.collectives) / layers

    def as_json(self) -> dict[str, object]:
        return {
            "layout": str(self.layout),
            "weight_bytes_per_device": self.weight_bytes_per_device,
            "kv_bytes_per_device": self.kv_bytes_per_device,
            "activation_bytes_per_device": self.activation_bytes_per_device,
            "step_bytes_per_device": self.step_bytes_per_device,
            "step_flops_per_device": self.step_flops_per_device,
            "weight_read_bytes_per_device": self.weight_read_bytes_per_device,
            "attention_flops_per_device": self.attention_flops_per_device,
            "expert_read_bytes_per_device": self.expert_read_bytes_per_device,
            "expert_flops_per_device": self.expert_flops_per_device,
            "alltoall_bytes_per_step": self.alltoall_bytes_per_step,
            "allreduce_bytes_per_step": self.allreduce_bytes_per_step,
            "expert_load_mean": self.expert_load_mean,
            "expert_load_busiest": self.expert_load_busiest,
            "collectives": [
                {
                    "kind": c.kind,
                    "group": c.group,
                    "calls": c.calls,
                    "message_bytes": c.message_bytes,
                }
                for c in self.collectives
            ],
        }


def _step_tokens(est: Estimate) -> tuple[int, int]:
    """(sequences, tokens per sequence) of one step."""
    if est.phase == "decode":
        return est.batch, 1
    return est.batch, est.context


def layout_figures(arch: Architecture, est: Estimate, layout: Layout) -> LayoutFigures:
    """The per-device figures and collectives of ``est``'s step under ``layout`` (the module
    docstring says how each part is split). ``layout`` must be valid for ``arch``."""
    check_layout(arch, layout)
    seqs, per_seq = _step_tokens(est)
    tokens = seqs * per_seq
    copies = tokens * arch.experts_per_token
    mean_load = copies / layout.ep if arch.is_moe else 0.0
    busiest = expected_busiest_rank(copies, layout.ep) if arch.is_moe else 0.0
    imbalance = busiest / mean_load if mean_load else 1.0
    step = _busiest_device_step(arch, est, layout, imbalance)
    weights, kv, activations = _held_per_device(arch, est, layout)
    collectives = _collectives(arch, est, layout, imbalance)
    b_a = BYTES_PER_ELEMENT[est.activations]
    alltoall = 0.0
    if arch.is_moe and layout.ep > 1:
        per_layer = ALLTOALLS_PER_MOE_LAYER * tokens * arch.hidden * arch.experts_per_token * b_a
        alltoall = _comm_passes(est) * arch.moe_layers * per_layer
    return LayoutFigures(
        layout=layout,
        weight_bytes_per_device=weights,
        kv_bytes_per_device=kv,
        activation_bytes_per_device=activations,
        step_bytes_per_device=step.bytes,
        step_flops_per_device=step.flops,
        weight_read_bytes_per_device=step.weight_bytes,
        attention_flops_per_device=step.attention_flops,
        expert_read_bytes_per_device=step.expert_bytes,
        expert_flops_per_device=step.expert_flops,
        alltoall_bytes_per_step=alltoall,
        allreduce_bytes_per_step=sum(
            c.message_bytes * c.calls for c in collectives if c.kind == "all-reduce"
        ),
        expert_load_mean=mean_load,
        expert_load_busiest=busiest,
        collectives=collectives,
    )


def _comm_passes(est: Estimate) -> int:
    """Times a step runs each collective: forward and backward in training, else once."""
    return 2 if est.phase == "training" else 1


def _group_share(est: Estimate, layout: Layout) -> float:
    """Share of the step's sequences the busiest attention group holds: ceil(B / dp) / B."""
    seqs, _ = _step_tokens(est)
    return math.ceil(seqs / layout.dp_attention) / seqs


def _kv_share(arch: Architecture, est: Estimate, layout: Layout) -> float:
    """Share of the step's KV cache one device holds (the module docstring)."""
    split = 1 if arch.is_mla else min(layout.tp, arch.kv_heads)
    return _group_share(est, layout) / split


@dataclass(frozen=True)
class _DeviceStep:
    bytes: float
    flops: float
    weight_bytes: float
    attention_flops: float
    expert_bytes: float  # the routed experts' weight reads (part of ``weight_bytes``)
    expert_flops: float  # the routed experts' matmuls, at the busiest rank's load


def _busiest_device_step(
    arch: Architecture, est: Estimate, layout: Layout, imbalance: float
) -> _DeviceStep:
    """Bytes and FLOPs of the step on its busiest device: the estimate's components, each
    split as the module docstring says (attention by tp and the group's sequences, the rest
    over the stage, the routed experts' FLOPs scaled by the busiest rank's load)."""
    seqs, per_seq = _step_tokens(est)
    units = 1 if est.phase == "training" else seqs * per_seq
    part = {name: (c.bytes * units, c.flops * units) for name, c in est.components.items()}
    training = est.phase == "training"
    reads = 2 if training else 1  # weight reads a step (workload_model: forward + backward)
    flop_passes = 3 if training else 1
    b_w = BYTES_PER_ELEMENT[est.weights]
    attention = sum(m.params for m in attention_matmuls(arch))
    projection_bytes = reads * b_w * arch.layers * attention
    expert_bytes = (
        reads
        * b_w
        * arch.moe_layers
        * parameters(arch).expert_per_layer
        * est.distinct_experts_per_layer
    )
    weight_bytes, weight_flops = part["weights"]
    rest_bytes = max(0.0, weight_bytes - projection_bytes - expert_bytes)
    projection_flops = flop_passes * 2.0 * seqs * per_seq * arch.layers * attention
    expert_flops = 0.0
    if arch.is_moe:
        one = sum(m.params for m in moe_matmuls(arch, 1.0) if m.name.startswith("expert_"))
        expert_flops = (
            flop_passes * 2.0 * seqs * per_seq * arch.moe_layers * arch.experts_per_token * one
        )
    rest_flops = max(0.0, weight_flops - projection_flops - expert_flops)
    group, stage = _group_share(est, layout), layout.stage
    shared = part["lm_head"][0] + part["activations"][0] + part["optimizer_state"][0]
    weights = projection_bytes / layout.tp + (expert_bytes + rest_bytes) / stage
    scores = part["attention"][1] * group / layout.tp
    return _DeviceStep(
        bytes=weights
        + shared / stage
        + (part["kv_read"][0] + part["kv_write"][0]) * _kv_share(arch, est, layout),
        flops=projection_flops * group / layout.tp
        + scores
        + expert_flops * imbalance / stage
        + (rest_flops + part["lm_head"][1]) / stage,
        weight_bytes=weights,
        attention_flops=scores,
        expert_bytes=expert_bytes / stage,
        expert_flops=expert_flops * imbalance / stage,
    )


def _held_per_device(
    arch: Architecture, est: Estimate, layout: Layout
) -> tuple[float, float, float]:
    """Weights, KV cache and working activations one device holds (one pipeline stage)."""
    b_w = BYTES_PER_ELEMENT[est.weights]
    attention = b_w * arch.layers * sum(m.params for m in attention_matmuls(arch))
    rest = max(0.0, est.weight_bytes - attention)
    weights = (attention / layout.tp + rest / layout.stage) / layout.pp
    working = max(0.0, est.memory_footprint_bytes - est.weight_bytes - est.kv_cache_bytes)
    if est.phase == "training":
        return weights, 0.0, working / layout.devices
    kv = est.kv_cache_bytes * _kv_share(arch, est, layout) / layout.pp
    return weights, kv, working * _group_share(est, layout)


def _collectives(
    arch: Architecture, est: Estimate, layout: Layout, imbalance: float
) -> tuple[Collective, ...]:
    """The step's collectives as the module docstring counts them."""
    seqs, per_seq = _step_tokens(est)
    tokens = seqs * per_seq
    passes = _comm_passes(est)
    message = BYTES_PER_ELEMENT[est.activations] * arch.hidden  # one token's activations
    out = []
    if layout.tp > 1:
        group_tokens = math.ceil(seqs / layout.dp_attention) * per_seq
        out.append(
            Collective("all-reduce", layout.tp, passes * arch.layers, group_tokens * message)
        )
    expert_parallel = arch.is_moe and layout.ep > 1
    ffn_layers = arch.dense_layers if expert_parallel else arch.layers
    if layout.stage > 1 and ffn_layers:
        out.append(Collective("all-reduce", layout.stage, passes * ffn_layers, tokens * message))
    if expert_parallel:
        # The busiest device receives imbalance x its mean share, (ep - 1)/ep of it remote.
        share = tokens * arch.experts_per_token * message / layout.ep
        received = share * imbalance * (layout.ep - 1) / layout.ep
        calls = passes * ALLTOALLS_PER_MOE_LAYER * arch.moe_layers
        out.append(Collective("all-to-all", layout.ep, calls, received))
    if layout.pp > 1:
        out.append(Collective("send", 2, passes * (layout.pp - 1), tokens * message))
    return tuple(out)
