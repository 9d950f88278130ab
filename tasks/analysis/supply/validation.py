"""The workload model checked against this host: what it predicts for a probed step, and how
far the measured step lands from it.

A workload probe runs ``layers`` of a model's decoder layers and its LM head (the memory may
hold no more); the like-for-like model figure is the workload model's estimate for the same
architecture cut to those layers (``cut``): the same weights read (embedding rows gathered,
touched experts only, norms, biases, the head), the same cache read and written, the same
matmuls and attention. Figures are per step: per-token figures times the batch (decode) or the
batch's prompt tokens (prefill).

The prediction is a roofline per part of the step, on this run's own ceilings, never the
catalog's, and the step is the SUM of its parts (``step_parts``, ``predict_parts``):

- the layers' weight matmuls (and their activations), the touched experts' matmuls, the LM head
  and attention (the KV cache read and written, the scores) each take the longer of moving
  their bytes at the measured triad bandwidth and doing their FLOPs at the GEMM rate measured
  at their own shape: ``rows`` (the tokens the matmul multiplies: the batch in decode, the
  prompt in prefill, a touched expert's share of the tokens, the batch for the head) by the
  part's widest weight matrix, in the compute dtype (``Part.gemm``). Attention is the plain
  roofline (the triad and the best square GEMM): its matmuls are one batched kernel of many
  small products (per sequence and KV head), which a single few-row GEMM does not stand for
  (timed alone, a 4 x 128 x 1024 product is all dispatch: 3 GFLOP/s); on this CPU it streams
  the cache at about 15 GB/s, below the triad, a few per cent of a batch-16 step;
- the parts add up because a compiled step runs them one after another (XLA on a CPU runs one
  kernel at a time; a GPU stream too): memory and compute overlap within a matmul, not across
  the step.

Why the GEMM rate at the part's shape, not the best square GEMM: a matmul of a few rows is
neither a GEMV nor a GEMM. Measured on a 2-core AMD EPYC host (XLA's CPU backend, float32): a
4096 x 28672 matmul reads its weights at 22 GB/s with one row (the triad reaches about 40: a
GEMV streams below STREAM speed), runs at 100 GFLOP/s with 16 rows (half the 210 of a square
1024 GEMM, and below either roofline), 180 with 128 rows. The single roofline max(bytes /
triad, FLOPs / square GEMM) therefore predicted batch-16 decode 2.5-3x too fast and batch-1
decode 20 % too fast; the per-part sum at the measured shapes predicts the one-layer steps
within a few per cent when the host is quiet. Where a shape's rate was not measured (a waived
case, a fake in tests), the best square GEMM stands in.

The ratio measured/predicted is then the share of the ceilings the workload misses (1.0: the
model is exact; 1.5: steps take 50 % longer than the parts at their measured rates add up to).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from tasks.analysis.supply.calibration import DTYPE_PRECISION
from tasks.analysis.workload.architecture import (
    Matmul,
    attention_matmuls,
    dense_ffn_matmuls,
    moe_matmuls,
)
from tasks.analysis.workload.workload_model import (
    Architecture,
    bytes_per_element,
    estimate,
    parameters,
)

BANDWIDTH_CEILING_PROBE = "triad"
_USABLE = ("ok", "unstable")
# A GEMM shape: (rows, in_features, out_features).
Gemm = tuple[int, int, int]


def cut(arch: Architecture, layers: int) -> Architecture:
    """``arch`` with ``layers`` of its layers, in proportion: dense-FFN layers of an MoE model
    and sliding-window layers scale down (rounded down, keeping at least one MoE layer)."""
    layers = max(1, min(layers, arch.layers))
    dense = arch.dense_layers * layers // arch.layers
    if arch.is_moe and arch.moe_layers:
        dense = min(dense, layers - 1)
    sliding = arch.sliding_layers * layers // arch.layers
    return replace(arch, layers=layers, dense_layers=dense, sliding_layers=sliding)


@dataclass(frozen=True)
class StepCost:
    """Bytes moved and FLOPs of one step (not per token)."""

    bytes: float
    flops: float


def step_cost(
    arch: Architecture,
    *,
    phase: str,
    batch: int,
    context: int,
    weights: str,
    kv: str,
    compute: str,
) -> StepCost:
    """The workload model's figures for one step of ``batch`` sequences."""
    e = estimate(
        arch, phase=phase, batch=batch, context=context, weights=weights, kv=kv, activations=compute
    )
    units = batch if phase == "decode" else batch * context
    return StepCost(bytes=e.bytes_per_unit * units, flops=e.flops_per_unit * units)


@dataclass(frozen=True)
class Part:
    """One part of a step, run after the others: its bytes and FLOPs per step, and the GEMM
    shape its FLOPs run at (None: the best square GEMM's rate)."""

    name: str
    bytes: float
    flops: float
    gemm: Gemm | None = None


def _widest(ops: Iterable[Matmul]) -> tuple[int, int]:
    """(in, out) features of the matmul with the most weights: where a part's rate is taken."""
    found = max(ops, key=lambda m: m.params)
    return found.in_features, found.out_features


def step_parts(
    arch: Architecture,
    *,
    phase: str,
    batch: int,
    context: int,
    weights: str,
    kv: str,
    compute: str,
) -> tuple[Part, ...]:
    """The workload model's step (``step_cost``) split into the parts a step runs one after
    another: the layers' matmuls (attention projections, dense and shared FFNs, the router, and
    all activation traffic), the touched experts (MoE), the LM head, attention (the KV cache
    read and written, the scores and values; its FLOPs at the square GEMM's rate). The parts'
    bytes and FLOPs add up to ``step_cost``'s."""
    e = estimate(
        arch, phase=phase, batch=batch, context=context, weights=weights, kv=kv, activations=compute
    )
    tokens = batch if phase == "decode" else batch * context

    def total(name: str) -> tuple[float, float]:
        return e.components[name].bytes * tokens, e.components[name].flops * tokens

    dense_ops = list(attention_matmuls(arch))
    if not arch.is_moe or arch.dense_layers:
        dense_ops += dense_ffn_matmuls(arch)
    expert_bytes = expert_flops = 0.0
    parts: list[Part] = []
    if arch.is_moe:
        ops = moe_matmuls(arch, 1.0)
        experts = [m for m in ops if m.name.startswith("expert_")]
        dense_ops += [m for m in ops if not m.name.startswith("expert_")]
        distinct = e.distinct_experts_per_layer
        expert_bytes = (
            bytes_per_element(weights) * arch.moe_layers * parameters(arch).expert_per_layer
        ) * distinct
        expert_flops = (
            2.0 * tokens * arch.moe_layers * arch.experts_per_token * sum(m.params for m in experts)
        )
        rows = max(1, round(tokens * arch.experts_per_token / distinct))
        parts.append(Part("experts", expert_bytes, expert_flops, (rows, *_widest(experts))))
    weight_bytes, weight_flops = total("weights")
    activation_bytes, _ = total("activations")
    layers_gemm = (tokens, *_widest(dense_ops))
    head_bytes, head_flops = total("lm_head")
    kv_read, _ = total("kv_read")
    kv_write, _ = total("kv_write")
    _, attention_flops = total("attention")
    return (
        Part(
            "matmuls",
            weight_bytes - expert_bytes + activation_bytes,
            weight_flops - expert_flops,
            layers_gemm,
        ),
        *parts,
        Part("lm_head", head_bytes, head_flops, (batch, arch.hidden, arch.vocab)),
        Part("attention", kv_read + kv_write, attention_flops),
    )


@dataclass(frozen=True)
class HostCeilings:
    """This run's measured ceilings on one device: triad bandwidth, best GEMM rate, and the
    GEMM rate at the shapes a case's parts run at (``Gemm`` -> FLOP/s; empty until measured)."""

    bandwidth_bytes_per_s: float
    flops_per_s: float
    gemm_flops_per_s: Mapping[Gemm, float] = field(default_factory=dict)

    def rate(self, gemm: Gemm | None) -> float:
        """FLOP/s at ``gemm``'s shape where measured, else the best square GEMM's."""
        return self.gemm_flops_per_s.get(gemm, self.flops_per_s) if gemm else self.flops_per_s


@dataclass(frozen=True)
class PartTime:
    """One part's predicted time: the longer of its memory and compute times."""

    name: str
    memory_s: float
    compute_s: float
    gemm: Gemm | None
    flops_per_s: float

    @property
    def step_s(self) -> float:
        return max(self.memory_s, self.compute_s)

    @property
    def bound(self) -> str:
        return "memory" if self.memory_s >= self.compute_s else "compute"


@dataclass(frozen=True)
class PartsPrediction:
    """A step's predicted time, the sum of its parts' (``memory_s``, ``compute_s``: the sums of
    the parts' memory and compute times, for the record)."""

    step_s: float
    memory_s: float
    compute_s: float
    parts: tuple[PartTime, ...] = ()
    bandwidth_bytes_per_s: float = math.nan  # the bandwidth the parts' bytes moved at


def predict_parts(parts: Sequence[Part], ceilings: HostCeilings) -> PartsPrediction:
    """Per part, the longer of moving its bytes at the triad bandwidth and doing its FLOPs at
    its shape's GEMM rate; the step is the sum of the parts (they run one after another)."""
    times = tuple(
        PartTime(
            p.name,
            p.bytes / ceilings.bandwidth_bytes_per_s,
            p.flops / ceilings.rate(p.gemm),
            p.gemm,
            ceilings.rate(p.gemm),
        )
        for p in parts
    )
    return PartsPrediction(
        step_s=sum(t.step_s for t in times),
        memory_s=sum(t.memory_s for t in times),
        compute_s=sum(t.compute_s for t in times),
        parts=times,
        bandwidth_bytes_per_s=ceilings.bandwidth_bytes_per_s,
    )


def ceilings(measurements: pd.DataFrame, dtype: str, device_index: int = 0) -> HostCeilings | None:
    """The best float32 triad and the best GEMM at ``dtype`` (any size) one device measured
    in ``measurements``; None where either is missing or failed."""
    rows = measurements[
        measurements["status"].isin(_USABLE) & (measurements["device_index"] == device_index)
    ]
    triad = rows[(rows["probe"] == BANDWIDTH_CEILING_PROBE) & (rows["dtype"] == "float32")]
    gemm = rows[(rows["probe"] == "matmul") & (rows["dtype"] == dtype)]
    if triad.empty or gemm.empty or dtype not in DTYPE_PRECISION:
        return None
    return HostCeilings(float(triad["best"].max()), float(gemm["best"].max()))


def ratio(measured_s: float, predicted_s: float) -> float:
    """Measured over predicted step time (NaN where either is missing)."""
    if not (math.isfinite(measured_s) and math.isfinite(predicted_s)) or predicted_s <= 0:
        return math.nan
    return measured_s / predicted_s


def median_abs_error(ratios: Iterable[float]) -> float:
    """Median of |ratio - 1| over the finite ratios (NaN when there are none)."""
    errors = [abs(r - 1.0) for r in ratios if math.isfinite(r)]
    return float(np.median(errors)) if errors else math.nan
