"""One step of one workload on one accelerator model, over a replica laid out as an engine serves
it: the prediction ``memwall predict`` prints and ``memwall backtest`` checks against measured
runs.

The replica is a serving layout (:mod:`tasks.analysis.workload.layout`: ``tp``, ``ep``,
``dp_attention``, ``pp``); where none is given, the one an engine would launch the model with
(:func:`~tasks.analysis.workload.layout.engine_layout`, which says why). The step waits for the
busiest device, so with spec bandwidth BW and dense peak F at the compute precision, and
efficiencies e_bw and e_f (each with its source):

    memory time   = (step bytes − X_b + X_b / r) of the busiest device / (BW · e_bw)
    compute time  = (step FLOPs − X_f + X_f / r) of the busiest device / (F · e_f)
                    (prefill: the attention scores' FLOPs at attention's own e_attn instead)
    communication = Σ collectives: calls · (latency + link bytes / link)   (supply.collectives)
    overhead      = o_decode · L (decode) | o_prefill · L (prefill) | 0 (training)
    step time     = max(memory time, compute time) + communication + overhead

Under pure tensor parallelism over N devices (the default for a dense model) the busiest
device's bytes and FLOPs are the step's over N, and the collectives are two all-reduces per
layer (after attention and after the FFN) of the step's activations. Each collective pays its
bytes over the catalog's ``interconnect_bandwidth_bytes_per_s`` (per device, per direction) and
a fixed latency per call, the figure and its source per link kind. Without that column the term
is left out and the prediction says so. The bound is whichever of memory and compute time is
larger. A prefill's attention (scores and their weighted sum over the prompt) is not a GEMM of
the weights: it runs at a fused attention kernel's share of the peak
(:data:`~tasks.analysis.supply.efficiency.ATTENTION_EFFICIENCY`), which matters from prompts of
a few thousand tokens on, and of the 16-bit peak whatever the matmuls' precision
(:func:`attention_peak`: an fp8 model's attention is not an fp8 kernel; this lowered the
leave-one-source-out prefill error from 21.7 % to 20.6 %). Decode's fitted compute efficiency
already holds its attention.

X_b and X_f are the routed experts' weight reads and matmul FLOPs on the busiest device, and r
(``experts``) the share of the dense efficiencies those matmuls reach. At decode each touched
expert multiplies a handful of tokens: a grouped GEMM of many small matrices, each read once
for a few rows, that reaches neither the dense GEMV's share of the bandwidth nor the GEMM's
share of the peak (tile padding, one launch per layer over a ragged token-to-expert map,
block-scale dequantisation per expert). r is fitted per architecture class on published
runs (:mod:`tasks.analysis.supply.published_fit`), 1 for a dense model, in prefill (hundreds
of tokens per expert: a GEMM like the others) and for a class with no fit of its own.

The overhead is what a step costs beyond its bytes, FLOPs and collectives: kernel launches,
synchronisation, scheduling. Published runs show it plainly: a 70B model at batch 1 over 8
devices moves 1/8 of the bytes of one device and still takes about 1/3 of its time; part of that
is the collectives' latency, now counted apart, and the fitted overhead stands for the rest.
Decode pays it per layer and step (each layer is a dozen small kernels), and so does a prefill
step (its forward pass launches the same kernels per layer; its own figure also holds the
scheduling of the request). Both figures are fitted on published runs with
the efficiencies (``tasks.analysis.supply.backtest``); a workload probe's measured efficiency
already holds its own overhead, so none is added to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import pandas as pd

from hardware_profiles.errors import MemwallError
from hardware_profiles.schema import PEAK_PRECISIONS, peak_column
from tasks.analysis.supply.ceilings import COMPUTE, MEMORY
from tasks.analysis.supply.collectives import (
    NO_COLLECTIVES,
    CollectiveTime,
    collective_time,
    scale_up_link,
)
from tasks.analysis.supply.efficiency import (
    ATTENTION_EFFICIENCY,
    EXPERTS_AS_DENSE,
    NO_OVERHEAD,
    Efficiency,
    Overhead,
)
from tasks.analysis.workload.layout import Layout, check_layout, engine_layout
from tasks.analysis.workload.layout_figures import LayoutFigures, layout_figures
from tasks.analysis.workload.step_overhead import OVERHEAD_PER
from tasks.analysis.workload.workload_model import Architecture, Estimate

# Share of memory a model may fill (the workload model's own default, restated for the note).
_USABLE_MEMORY: Final = 0.9


class PredictionError(MemwallError):
    """A prediction asked for on hardware that cannot run it as described."""


def overhead_s(phase: str, layers: float, overhead: Overhead) -> float:
    """One step's overhead: per layer in decode and prefill, none in training."""
    per = OVERHEAD_PER.get(phase)
    if per is None:
        return 0.0
    return overhead.seconds * (layers if per == "layer" else 1.0)


@dataclass(frozen=True)
class Prediction:
    step_time_s: float
    tokens_per_s: float
    tokens_per_s_per_device: float
    bound: str
    memory_time_s: float
    compute_time_s: float
    attention_time_s: float  # the part of compute_time_s at attention's own efficiency
    communication_time_s: float
    overhead_time_s: float
    devices: int
    bandwidth_efficiency: Efficiency
    flops_efficiency: Efficiency
    overhead: Overhead
    notes: tuple[str, ...]
    layout: Layout
    layout_reason: str
    figures: LayoutFigures
    collectives: CollectiveTime
    link_source: str
    expert_efficiency: Efficiency = EXPERTS_AS_DENSE

    def as_json(self) -> dict[str, Any]:
        return {
            "step_time_s": self.step_time_s,
            "tokens_per_s": self.tokens_per_s,
            "tokens_per_s_per_device": self.tokens_per_s_per_device,
            "bound": self.bound,
            "memory_time_s": self.memory_time_s,
            "compute_time_s": self.compute_time_s,
            "attention_time_s": self.attention_time_s,
            "communication_time_s": self.communication_time_s,
            "communication_bytes_time_s": self.collectives.bytes_s,
            "communication_latency_time_s": self.collectives.latency_s,
            "collective_calls_per_step": self.collectives.calls,
            "link_source": self.link_source,
            "overhead_time_s": self.overhead_time_s,
            "overhead_source": self.overhead.source,
            "devices": self.devices,
            "layout": str(self.layout),
            "layout_reason": self.layout_reason,
            "per_device": self.figures.as_json(),
            "bandwidth_efficiency": self.bandwidth_efficiency.value,
            "bandwidth_efficiency_source": self.bandwidth_efficiency.source,
            "bandwidth_efficiency_spread": self.bandwidth_efficiency.spread,
            "flops_efficiency": self.flops_efficiency.value,
            "flops_efficiency_source": self.flops_efficiency.source,
            "flops_efficiency_spread": self.flops_efficiency.spread,
            "expert_matmul_efficiency": self.expert_efficiency.value,
            "expert_matmul_efficiency_source": self.expert_efficiency.source,
            "expert_matmul_efficiency_spread": self.expert_efficiency.spread,
            "notes": list(self.notes),
        }


def step_tokens(estimate: Estimate) -> float:
    """Tokens one step produces or consumes: the throughput's numerator."""
    if estimate.phase == "decode":
        return float(estimate.batch)
    return float(estimate.batch * estimate.context)


def _number(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    return None if value is None or pd.isna(value) else float(value)


# Attention kernels compute in 16 bits whatever the matmuls' precision: FlashAttention-2 and
# TensorRT-LLM's context FMHA take fp16/bf16 inputs (an fp8 KV cache is dequantized into them;
# FlashAttention-3's fp8 path and TensorRT-LLM's fp8 context FMHA are opt-ins), so an fp8 or
# fp4 model's attention runs at the 16-bit peak, not its matmuls' one.
_NARROW: Final = ("fp8", "fp6", "fp4", "int8", "int4")


def attention_peak(accelerator: Mapping[str, Any], precision: str) -> float:
    """The dense peak attention runs at: bf16's (else fp16's) for a narrow compute precision,
    the precision's own otherwise (or where the device has no 16-bit peak)."""
    if precision in _NARROW:
        for wide in ("bf16", "fp16"):
            value = _number(accelerator, f"peak_flops_per_s_{wide}")
            if value is not None:
                return value
    own = _number(accelerator, peak_column(precision))
    if own is None:
        raise PredictionError(f"{accelerator['accelerator_id']} has no {precision} peak")
    return own


def replica_layout(arch: Architecture, devices: int, layout: Layout | None) -> tuple[Layout, str]:
    """``layout`` checked against ``devices``, or the engine's default for them, with why."""
    if devices < 1:
        raise PredictionError(f"devices must be >= 1, got {devices}")
    if layout is None:
        return engine_layout(arch, devices)
    return check_layout(arch, layout, devices), "as given"


def predict(
    arch: Architecture,
    estimate: Estimate,
    accelerator: Mapping[str, Any],
    bandwidth: Efficiency,
    flops: Efficiency,
    devices: int = 1,
    overhead: Overhead = NO_OVERHEAD,
    layout: Layout | None = None,
    attention: Efficiency = ATTENTION_EFFICIENCY,
    experts: Efficiency = EXPERTS_AS_DENSE,
) -> Prediction:
    """Step time and throughput of ``estimate`` on ``devices`` of the catalog row
    ``accelerator`` (a mapping of catalog columns) laid out as ``layout`` (default: the
    engine's), ``overhead`` per layer or step added; a prefill's attention at ``attention``,
    the routed experts' matmuls at ``experts``' share of the dense efficiencies."""
    chosen, reason = replica_layout(arch, devices, layout)
    name = str(accelerator["accelerator_id"])
    peak = _number(accelerator, peak_column(estimate.precision))
    if peak is None:
        have = [
            p for p in PEAK_PRECISIONS if _number(accelerator, f"peak_flops_per_s_{p}") is not None
        ]
        raise PredictionError(
            f"{name} has no dense {estimate.precision} peak to run the matmuls at; "
            f"it has {', '.join(have)}"
        )
    figures = layout_figures(arch, estimate, chosen)
    expert_bytes = figures.expert_read_bytes_per_device
    expert_flops = figures.expert_flops_per_device
    slower = 1.0 / experts.value - 1.0  # each expert byte and FLOP costs 1/r of a dense one
    memory_time = (figures.step_bytes_per_device + slower * expert_bytes) / (
        float(accelerator["mem_bandwidth_bytes_per_s"]) * bandwidth.value
    )
    scores = figures.attention_flops_per_device if estimate.phase == "prefill" else 0.0
    attention_time = scores / (attention_peak(accelerator, estimate.precision) * attention.value)
    matmuls = figures.step_flops_per_device - scores + slower * expert_flops
    compute_time = matmuls / (peak * flops.value) + attention_time
    notes = []
    link = scale_up_link(accelerator)
    collectives = NO_COLLECTIVES
    if figures.collectives:
        if link is None:
            notes.append(
                f"the catalog has no interconnect bandwidth for {name}: the layout's "
                "collectives are not counted"
            )
        else:
            collectives = collective_time(figures, link)
    memory = _number(accelerator, "memory_bytes")
    if memory is not None:
        held = (
            figures.weight_bytes_per_device
            + figures.kv_bytes_per_device
            + figures.activation_bytes_per_device
        )
        if held > memory * _USABLE_MEMORY:
            notes.append(
                f"{held / 1e9:,.1f} GB per device under {chosen} does not fit {name} "
                f"({_USABLE_MEMORY:.0%} of memory usable); the whole step holds "
                f"{estimate.memory_footprint_bytes / 1e9:,.1f} GB, which needs "
                f"{estimate.devices_needed(memory, _USABLE_MEMORY)} devices at the least"
            )
    fixed = overhead_s(estimate.phase, arch.layers, overhead)
    step = max(memory_time, compute_time) + collectives.seconds + fixed
    tokens_per_s = step_tokens(estimate) / step
    return Prediction(
        step_time_s=step,
        tokens_per_s=tokens_per_s,
        tokens_per_s_per_device=tokens_per_s / devices,
        bound=MEMORY if memory_time >= compute_time else COMPUTE,
        memory_time_s=memory_time,
        compute_time_s=compute_time,
        attention_time_s=attention_time,
        communication_time_s=collectives.seconds,
        overhead_time_s=fixed,
        devices=devices,
        bandwidth_efficiency=bandwidth,
        flops_efficiency=flops,
        overhead=overhead,
        notes=(*estimate.warnings, *notes),
        layout=chosen,
        layout_reason=reason,
        figures=figures,
        collectives=collectives,
        link_source="" if link is None else f"{link.kind.name}: {link.kind.source}",
        expert_efficiency=experts,
    )
