"""One step of one workload on one accelerator model, tensor parallel across N devices: the
prediction ``memwall predict`` prints and ``memwall backtest`` checks against measured runs.

For ``devices`` = N devices of spec bandwidth BW and dense peak F at the compute precision,
with efficiencies e_bw and e_f (each with its source), a step of the workload model's
``bytes`` and ``flops`` takes

    memory time   = bytes / (N · BW · e_bw)     weights and KV cache split N ways
    compute time  = flops / (N · F · e_f)
    communication = 2 · L · passes · 2·(N−1)/N · tokens · hidden · b_a / link
    overhead      = o_decode · L (decode) | o_prefill (prefill) | 0 (training)
    step time     = max(memory time, compute time) + communication + overhead

Communication is tensor parallelism's all-reduce of the activations after each attention and
each FFN block (two per layer), a ring all-reduce moving 2·(N−1)/N of the buffer per device
over the catalog's ``interconnect_bandwidth_bytes_per_s`` (per device, per direction); passes
is 1 for inference and 2 for training (forward and backward). Without that column the term is
left out and the prediction says so; the per-message latency of each all-reduce is not counted.
The bound is whichever of memory and compute time is larger.

The overhead is what a step costs beyond its bytes and FLOPs: kernel launches, synchronisation,
scheduling. Published runs show it plainly: a 70B model at batch 1 over 8 devices moves 1/8 of
the bytes of one device and still takes about 1/3 of its time. Decode pays it per layer and
step (each layer is a dozen small kernels); a prefill step pays it once (a request is scheduled,
its prompt batched). Both figures are fitted on published runs with the efficiencies
(``tasks.analysis.supply.backtest``); a workload probe's measured efficiency already holds its own
overhead, so none is added to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import pandas as pd

from hardware_profiles.errors import MemwallError
from hardware_profiles.schema import PEAK_PRECISIONS, peak_column
from tasks.analysis.supply.ceilings import COMPUTE, MEMORY
from tasks.analysis.supply.efficiency import NO_OVERHEAD, Efficiency, Overhead
from tasks.analysis.workload.step_model import ALLREDUCES_PER_LAYER, ring_allreduce_s
from tasks.analysis.workload.step_overhead import OVERHEAD_PER
from tasks.analysis.workload.workload_model import Architecture, Estimate, bytes_per_element

# Share of memory a model may fill (the workload model's own default, restated for the note).
_USABLE_MEMORY: Final = 0.9


class PredictionError(MemwallError):
    """A prediction asked for on hardware that cannot run it as described."""


def overhead_s(phase: str, layers: float, overhead: Overhead) -> float:
    """One step's overhead: per layer in decode, once per step in prefill, none in training."""
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
    communication_time_s: float
    overhead_time_s: float
    devices: int
    bandwidth_efficiency: Efficiency
    flops_efficiency: Efficiency
    overhead: Overhead
    notes: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "step_time_s": self.step_time_s,
            "tokens_per_s": self.tokens_per_s,
            "tokens_per_s_per_device": self.tokens_per_s_per_device,
            "bound": self.bound,
            "memory_time_s": self.memory_time_s,
            "compute_time_s": self.compute_time_s,
            "communication_time_s": self.communication_time_s,
            "overhead_time_s": self.overhead_time_s,
            "overhead_source": self.overhead.source,
            "devices": self.devices,
            "bandwidth_efficiency": self.bandwidth_efficiency.value,
            "bandwidth_efficiency_source": self.bandwidth_efficiency.source,
            "bandwidth_efficiency_spread": self.bandwidth_efficiency.spread,
            "flops_efficiency": self.flops_efficiency.value,
            "flops_efficiency_source": self.flops_efficiency.source,
            "flops_efficiency_spread": self.flops_efficiency.spread,
            "notes": list(self.notes),
        }


def step_units(estimate: Estimate) -> float:
    """Units (the estimate is per unit) in one step: a token per sequence in decode, every
    prompt token in prefill, one optimizer step in training."""
    if estimate.phase == "decode":
        return float(estimate.batch)
    if estimate.phase == "prefill":
        return float(estimate.batch * estimate.context)
    return 1.0


def step_tokens(estimate: Estimate) -> float:
    """Tokens one step produces or consumes: the throughput's numerator."""
    if estimate.phase == "decode":
        return float(estimate.batch)
    return float(estimate.batch * estimate.context)


def communication_time_s(
    arch: Architecture, estimate: Estimate, devices: int, link_bytes_per_s: float
) -> float:
    """Tensor-parallel all-reduces of one step (see the module docstring)."""
    if devices <= 1:
        return 0.0
    passes = 2.0 if estimate.phase == "training" else 1.0
    buffer = step_tokens(estimate) * arch.hidden * bytes_per_element(estimate.activations)
    calls = ALLREDUCES_PER_LAYER * arch.layers * passes
    return calls * ring_allreduce_s(buffer, devices, link_bytes_per_s)


def tensor_parallel_degrees(arch: Architecture) -> list[int]:
    """The device counts an engine can split ``arch`` over, tensor parallel: each device
    takes a whole share of the query heads, and of the KV heads or a copy of one (vLLM
    replicates KV heads when the degree exceeds them)."""
    return [
        n
        for n in range(1, arch.heads + 1)
        if arch.heads % n == 0 and (arch.kv_heads % n == 0 or n % arch.kv_heads == 0)
    ]


def _number(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    return None if value is None or pd.isna(value) else float(value)


def predict(
    arch: Architecture,
    estimate: Estimate,
    accelerator: Mapping[str, Any],
    bandwidth: Efficiency,
    flops: Efficiency,
    devices: int = 1,
    overhead: Overhead = NO_OVERHEAD,
) -> Prediction:
    """Step time and throughput of ``estimate`` on ``devices`` of the catalog row
    ``accelerator`` (a mapping of catalog columns), ``overhead`` per layer or step added."""
    if devices < 1:
        raise PredictionError(f"devices must be >= 1, got {devices}")
    if devices not in tensor_parallel_degrees(arch):
        raise PredictionError(
            f"{arch.name} cannot be split tensor parallel over {devices} devices: its "
            f"{arch.heads} query and {arch.kv_heads} KV heads do not divide that way; valid "
            f"device counts: {', '.join(map(str, tensor_parallel_degrees(arch)))}"
        )
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
    units = step_units(estimate)
    memory_time = (
        estimate.bytes_per_unit
        * units
        / (devices * float(accelerator["mem_bandwidth_bytes_per_s"]) * bandwidth.value)
    )
    compute_time = estimate.flops_per_unit * units / (devices * peak * flops.value)
    notes = []
    link = _number(accelerator, "interconnect_bandwidth_bytes_per_s")
    communication = 0.0
    if devices > 1:
        if link is None:
            notes.append(
                f"the catalog has no interconnect bandwidth for {name}: tensor-parallel "
                "communication is not counted"
            )
        else:
            communication = communication_time_s(arch, estimate, devices, link)
    memory = _number(accelerator, "memory_bytes")
    if memory is not None and not estimate.fits(memory, devices, _USABLE_MEMORY):
        notes.append(
            f"{estimate.memory_footprint_bytes / 1e9:,.1f} GB does not fit {devices} x {name} "
            f"({_USABLE_MEMORY:.0%} of memory usable): it needs "
            f"{estimate.devices_needed(memory, _USABLE_MEMORY)} devices"
        )
    fixed = overhead_s(estimate.phase, arch.layers, overhead)
    step = max(memory_time, compute_time) + communication + fixed
    tokens_per_s = step_tokens(estimate) / step
    return Prediction(
        step_time_s=step,
        tokens_per_s=tokens_per_s,
        tokens_per_s_per_device=tokens_per_s / devices,
        bound=MEMORY if memory_time >= compute_time else COMPUTE,
        memory_time_s=memory_time,
        compute_time_s=compute_time,
        communication_time_s=communication,
        overhead_time_s=fixed,
        devices=devices,
        bandwidth_efficiency=bandwidth,
        flops_efficiency=flops,
        overhead=overhead,
        notes=(*estimate.warnings, *notes),
    )
