"""The workload model checked against this host: what it predicts for a probed step, and how
far the measured step lands from it.

A workload probe runs ``layers`` of a model's decoder layers and its LM head (the memory may
hold no more); the like-for-like model figure is the workload model's estimate for the same
architecture cut to those layers (``cut``): the same weights read (embedding rows gathered,
touched experts only, norms, biases, the head), the same cache read and written, the same
matmuls and attention. Figures are per step: per-token figures times the batch (decode) or the
batch's prompt tokens (prefill).

The prediction is a roofline on this run's own ceilings, never the catalog's: the model's bytes
over the measured triad bandwidth against its FLOPs over the best measured GEMM rate at the
compute dtype; the step takes the longer of the two. The ratio measured/predicted is then the
share of the ceiling the workload misses (1.0: the model is exact; 1.5: steps take 50 % longer
than the roofline says).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from tasks.analysis.calibration import DTYPE_PRECISION
from tasks.analysis.workload_model import Architecture, estimate

BANDWIDTH_CEILING_PROBE = "triad"
_USABLE = ("ok", "unstable")


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
class Ceilings:
    """This run's measured ceilings on one device: triad bandwidth, best GEMM rate."""

    bandwidth_bytes_per_s: float
    flops_per_s: float


@dataclass(frozen=True)
class Prediction:
    step_s: float
    memory_s: float
    compute_s: float

    @property
    def bound(self) -> str:
        return "memory" if self.memory_s >= self.compute_s else "compute"


def predict(cost: StepCost, ceilings: Ceilings) -> Prediction:
    """Roofline step time: the longer of moving the bytes and doing the FLOPs."""
    memory = cost.bytes / ceilings.bandwidth_bytes_per_s
    compute = cost.flops / ceilings.flops_per_s
    return Prediction(step_s=max(memory, compute), memory_s=memory, compute_s=compute)


def ceilings(measurements: pd.DataFrame, dtype: str, device_index: int = 0) -> Ceilings | None:
    """The best float32 triad and the best GEMM at ``dtype`` (any size) one device measured
    in ``measurements``; None where either is missing or failed."""
    rows = measurements[
        measurements["status"].isin(_USABLE) & (measurements["device_index"] == device_index)
    ]
    triad = rows[(rows["probe"] == BANDWIDTH_CEILING_PROBE) & (rows["dtype"] == "float32")]
    gemm = rows[(rows["probe"] == "matmul") & (rows["dtype"] == dtype)]
    if triad.empty or gemm.empty or dtype not in DTYPE_PRECISION:
        return None
    return Ceilings(float(triad["best"].max()), float(gemm["best"].max()))


def ratio(measured_s: float, predicted_s: float) -> float:
    """Measured over predicted step time (NaN where either is missing)."""
    if not (math.isfinite(measured_s) and math.isfinite(predicted_s)) or predicted_s <= 0:
        return math.nan
    return measured_s / predicted_s


def median_abs_error(ratios: Iterable[float]) -> float:
    """Median of |ratio - 1| over the finite ratios (NaN when there are none)."""
    errors = [abs(r - 1.0) for r in ratios if math.isfinite(r)]
    return float(np.median(errors)) if errors else math.nan
