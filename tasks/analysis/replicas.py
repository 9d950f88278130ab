"""Replicas: how many devices one copy of a workload's model spans, the largest batch it can
hold and serve within its latency target, and how long one step takes on it.

A workload is served by replicas of n devices (tensor parallel: every weight matrix split n
ways). Per workload everything is linear in the batch b (sequences per step), with the
coefficients of :class:`StepModel`:

- memory(b)   = M0 + b·Ms            weights (+ fixed buffers) and the KV cache of b sequences
- bytes(b)    = B0 + b·Bs            memory traffic of one step
- flops(b)    = b·Fs                 FLOPs of one step
- allreduce(b)= b·A                  activation bytes all-reduced per step, summed over blocks

On an accelerator model h (usable memory fraction f = DEFAULT_USABLE_MEMORY_FRACTION, memory
Mem_h, calibrated bandwidth BW_h and FLOP/s F_h, interconnect IC_h per device per direction):

- devices to hold batch b:  n_fit(b) = max(1, ceil(memory(b) / (f·Mem_h)))
- step time on n devices:   step(n, b) = max(bytes(b)/(n·BW_h), flops(b)/(n·F_h)) + comm(n, b)
- comm(n, b) = 2·(n−1)/n · b·A / IC_h: a ring all-reduce moves 2(n−1)/n of each message
  through every device's link; one all-reduce of the activations after the attention block and
  one after the FFN block of every layer (Megatron-style tensor parallelism). Where IC_h or A
  is unknown the term is 0 and :data:`NO_COMM_NOTE` says so. Link latency is not counted.
- decode: the time per output token (TPOT) is step(n, b); prefill: the time to first token
  (TTFT) of b prompts processed together is step(n, b).
- replica: the fewest n <= cap (max_devices_per_replica, default 8) that hold the workload's
  batch B and meet its SLO at batch 1; a **capacity wall** when n_fit(B) > cap, a **latency
  wall** when no n in [n_fit(1), cap] gives step(n, 1) <= SLO. As step(n, 1) = K + (S1 − K)/n
  with S1 the one-device time and K = 2·A/IC, it falls with n when S1 > K (the fewest n meeting
  the SLO is ceil((S1 − K)/(SLO − K))) and rises otherwise (only n_fit(1) can meet it).
- max batch on n devices: the largest b with memory(b) <= n·f·Mem_h and step(n, b) <= SLO:
  step is the larger of two lines in b, so b <= (SLO − B0/(n·BW))/(Bs/(n·BW) + c) and
  b <= SLO/(Fs/(n·F) + c), with c = 2(n−1)/n · A/IC.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from hardware_profiles.errors import MemwallError
from tasks.analysis.ceilings import PEAK_INDEX, lookup
from tasks.analysis.models.presets import estimate_workload, preset
from tasks.analysis.number_formats import BYTES_PER_ELEMENT
from tasks.analysis.precision_changes import decode_split
from tasks.analysis.projection import Projector
from tasks.analysis.step_overhead import overheads_per_unit
from tasks.analysis.workload_model import DEFAULT_USABLE_MEMORY_FRACTION

DEFAULT_MAX_DEVICES_PER_REPLICA = 8
NO_COMM_NOTE = (
    "no tensor-parallel communication counted where the catalog has no interconnect bandwidth "
    "or the workload no model architecture"
)
_EPS = 1e-9  # ceil/floor of quotients that are integers up to rounding
_MODEL_KEYS = (
    "model_preset",
    "phase",
    "batch",
    "context_tokens",
    "precision",
    "weight_precision",
    "kv_precision",
)


@dataclass(frozen=True)
class StepModel:
    """Per-workload coefficients (arrays of shape (workloads,)) of the linear model above."""

    memory_fixed_bytes: np.ndarray
    memory_per_sequence_bytes: np.ndarray
    step_fixed_bytes: np.ndarray
    step_bytes_per_sequence: np.ndarray
    step_flops_per_sequence: np.ndarray
    allreduce_bytes_per_sequence: np.ndarray  # NaN: unknown (no architecture)
    batch: np.ndarray
    slo_s: np.ndarray  # NaN: no latency target
    max_devices: np.ndarray
    overhead_times: np.ndarray  # times a step pays its phase's overhead: layers, 1 or 0

    def take(self, rows: np.ndarray) -> StepModel:
        return StepModel(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def with_rows(self, rows: np.ndarray, other: StepModel) -> StepModel:
        """These coefficients, with ``rows`` replaced by ``other``'s (in order)."""
        merged = {}
        for f in fields(self):
            values = getattr(self, f.name).copy()
            values[rows] = getattr(other, f.name)
            merged[f.name] = values
        return StepModel(**merged)

    def bytes_scaled(self, factor: np.ndarray) -> StepModel:
        """Memory and traffic times ``factor`` per workload (narrower weights and KV cache,
        activations taken alike: the row-alone approximation of the mitigations)."""
        return replace(
            self,
            memory_fixed_bytes=self.memory_fixed_bytes * factor,
            memory_per_sequence_bytes=self.memory_per_sequence_bytes * factor,
            step_fixed_bytes=self.step_fixed_bytes * factor,
            step_bytes_per_sequence=self.step_bytes_per_sequence * factor,
        )


def _column(workloads: pd.DataFrame, name: str, default: float) -> np.ndarray:
    if name not in workloads:
        return np.full(len(workloads), default)
    return np.asarray(workloads[name].to_numpy(dtype=float, na_value=np.nan))


def _units_per_step(phase: str, batch: int, context: int) -> float:
    return {"decode": float(batch), "prefill": float(batch * context)}.get(phase, 1.0)


def step_model(workloads: pd.DataFrame) -> StepModel:
    """The coefficients of every workload: exact for rows made from a model preset (the
    workload model at batch 1 and at the row's batch, or 2: both points lie on the lines);
    from the row alone otherwise (decode: weights and KV split as the batch mitigation does;
    other phases: all memory fixed, all traffic per sequence; no communication term).
    Training replicas hold one sequence (the rest of the batch is data parallel), so only
    their memory is sized; they have no latency target."""
    n = len(workloads)
    phase = workloads["phase"].to_numpy(dtype=object)
    batch = np.nan_to_num(_column(workloads, "batch", 1.0), nan=1.0)
    context = np.nan_to_num(_column(workloads, "context_tokens", 1.0), nan=1.0)
    flops = workloads["flops_per_unit"].to_numpy(dtype=float)
    nbytes = workloads["bytes_per_unit"].to_numpy(dtype=float)
    footprint = workloads["memory_footprint_bytes"].to_numpy(dtype=float)
    decode, prefill = phase == "decode", phase == "prefill"

    weights, kv = decode_split(workloads)
    split = decode & ~np.isnan(weights)
    per_step_weights = np.where(split, np.nan_to_num(weights) * batch, 0.0)
    per_unit_tokens = np.where(prefill, context, 1.0)
    b0 = per_step_weights
    bs = np.where(split, np.nan_to_num(kv), nbytes * per_unit_tokens)
    fs = flops * per_unit_tokens
    kv_memory = np.clip(footprint - per_step_weights, 0.0, None) / batch
    ms = np.where(split, kv_memory, 0.0)
    m0 = footprint - ms * batch
    allreduce = np.full(n, np.nan)

    _fill_from_presets(workloads, m0, ms, b0, bs, fs, allreduce)
    slo = np.where(
        decode,
        _column(workloads, "tpot_slo_s", np.nan),
        np.where(prefill, _column(workloads, "ttft_slo_s", np.nan), np.nan),
    )
    cap = np.nan_to_num(
        _column(workloads, "max_devices_per_replica", DEFAULT_MAX_DEVICES_PER_REPLICA),
        nan=DEFAULT_MAX_DEVICES_PER_REPLICA,
    )
    times = overheads_per_unit(workloads) * np.where(prefill, batch * context, batch)
    return StepModel(m0, ms, b0, bs, fs, allreduce, batch, slo, cap, times)


def _fill_from_presets(
    workloads: pd.DataFrame,
    m0: np.ndarray,
    ms: np.ndarray,
    b0: np.ndarray,
    bs: np.ndarray,
    fs: np.ndarray,
    allreduce: np.ndarray,
) -> None:
    """Overwrite the coefficients of rows made from a model preset with the workload model's
    (each distinct model, phase, batch, context and precision estimated once)."""
    if "model_preset" not in workloads:
        return
    modelled = np.flatnonzero(workloads["model_preset"].notna().to_numpy())
    if modelled.size == 0:
        return
    subset = workloads.iloc[modelled]
    keys = [k for k in _MODEL_KEYS if k in subset]
    for positions in subset.groupby(keys, dropna=False, sort=False).indices.values():
        row = {str(k): v for k, v in subset.iloc[positions[0]].items()}
        try:
            first = estimate_workload(row, batch=1)
            if first is None:
                continue
            if first.phase == "training":
                # Data parallelism and gradient accumulation spread the global batch: a
                # replica holds the weights, optimizer state and one sequence's activations.
                m0[modelled[positions]] = first.memory_footprint_bytes
                ms[modelled[positions]] = 0.0
                continue
            other = max(2, int(row["batch"]))
            second = estimate_workload(row, batch=other)
            arch = preset(str(row["model_preset"]))
        except MemwallError:
            continue  # a preset this memwall does not know: keep the row's own figures
        assert second is not None
        context = first.context
        points = []
        for e in (first, second):
            units = _units_per_step(e.phase, e.batch, context)
            points.append((e.batch, e.memory_footprint_bytes, e.bytes_per_unit * units))
        (x1, mem1, bytes1), (x2, mem2, bytes2) = points
        rows = modelled[positions]
        ms[rows] = (mem2 - mem1) / (x2 - x1)
        m0[rows] = mem1 - ms[rows] * x1
        bs[rows] = (bytes2 - bytes1) / (x2 - x1)
        b0[rows] = bytes1 - bs[rows] * x1
        fs[rows] = second.flops_per_unit * _units_per_step(second.phase, x2, context) / x2
        tokens = 1 if first.phase == "decode" else context
        b_a = BYTES_PER_ELEMENT[first.activations]
        allreduce[rows] = 2 * arch.layers * tokens * arch.hidden * b_a


@dataclass(frozen=True)
class Hardware:
    """Per accelerator model (arrays of shape (models,)); bandwidth and FLOP/s per workload and
    model, since the calibrated ceilings depend on the workload's phase (and precision)."""

    memory_bytes: np.ndarray
    bandwidth_bytes_per_s: np.ndarray  # (workloads, models), at each workload's phase
    flops_per_s: np.ndarray  # (workloads, models), at each workload's phase and precision
    interconnect_bytes_per_s: np.ndarray  # NaN: unknown
    overhead_s: np.ndarray  # (workloads, models): the phase's step overhead figure


@dataclass(frozen=True)
class Replicas:
    """Per workload and accelerator model (arrays of shape (workloads, models))."""

    fit_devices: np.ndarray  # n_fit(B): devices holding the workload's batch
    fits: np.ndarray  # n_fit(B) <= cap
    latency_ok: np.ndarray  # some n in [n_fit(1), cap] meets the SLO at batch 1 (or no SLO)
    latency_devices: np.ndarray  # fewest n meeting the SLO at batch 1 (inf where none)
    devices: np.ndarray  # the replica: max(n_fit(B), latency_devices), NaN at a wall
    max_batch: np.ndarray  # largest batch that fits and meets the SLO on the replica
    step_s: np.ndarray  # step(devices, B) where the replica exists, else NaN


def _fit(model: StepModel, usable: np.ndarray, b: np.ndarray) -> np.ndarray:
    need = (model.memory_fixed_bytes[:, None] + b * model.memory_per_sequence_bytes[:, None]) / (
        usable[None, :]
    )
    return np.asarray(np.maximum(1.0, np.ceil(need - _EPS)))


def one_device_step_s(model: StepModel, hw: Hardware, b: np.ndarray | float) -> np.ndarray:
    """max(bytes(b)/BW, flops(b)/F) on one device, (workloads, models)."""
    memory = (
        model.step_fixed_bytes[:, None] + b * model.step_bytes_per_sequence[:, None]
    ) / hw.bandwidth_bytes_per_s
    compute = b * model.step_flops_per_sequence[:, None] / hw.flops_per_s
    return np.asarray(np.maximum(memory, compute))


def comm_s_per_sequence(model: StepModel, hw: Hardware) -> np.ndarray:
    """2·A/IC: the all-reduce time per sequence as n grows large; 0 where unknown."""
    per = 2 * model.allreduce_bytes_per_sequence[:, None] / hw.interconnect_bytes_per_s[None, :]
    return np.asarray(np.nan_to_num(per, nan=0.0))


def fixed_s(model: StepModel, hw: Hardware) -> np.ndarray:
    """o: the step overhead (``tasks.analysis.predict``), whatever n and b, (workloads, models)."""
    return np.asarray(model.overhead_times[:, None] * hw.overhead_s)


def step_s(model: StepModel, hw: Hardware, n: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """step(n, b) = one-device step / n + 2(n−1)/n · b·A/IC + o."""
    comm = comm_s_per_sequence(model, hw) * b * (n - 1) / n
    return np.asarray(one_device_step_s(model, hw, b) / n + comm + fixed_s(model, hw))


def size_replicas(model: StepModel, hw: Hardware) -> Replicas:
    usable = DEFAULT_USABLE_MEMORY_FRACTION * hw.memory_bytes
    cap = model.max_devices[:, None]
    batch = model.batch[:, None]
    slo = model.slo_s[:, None]
    has_slo = ~np.isnan(slo)
    fit_batch = _fit(model, usable, batch)
    fit_one = _fit(model, usable, np.ones_like(batch))
    fits = fit_batch <= cap

    s1 = one_device_step_s(model, hw, 1.0)
    k = comm_s_per_sequence(model, hw)
    o = fixed_s(model, hw)
    with np.errstate(divide="ignore", invalid="ignore"):
        at_fit = step_s(model, hw, fit_one, 1.0)
        at_cap = step_s(model, hw, np.maximum(cap, fit_one), 1.0)
        # step(n, 1) = (s1 − k)/n + k + o <= slo  <=>  n >= (s1 − k)/(slo − k − o)
        falling = (s1 > k) & (slo > k + o)
        needed = np.where(falling, np.ceil((s1 - k) / (slo - k - o) - _EPS), np.inf)
    latency_devices = np.where(~has_slo | (at_fit <= slo), fit_one, np.maximum(needed, fit_one))
    latency_ok = ~has_slo | ((fit_one <= cap) & (np.minimum(at_fit, at_cap) <= slo))
    exists = fits & latency_ok
    n = np.where(exists, np.maximum(fit_batch, latency_devices), cap)
    max_batch = _max_batch(model, hw, n, usable)
    with np.errstate(invalid="ignore"):
        step = np.where(exists, step_s(model, hw, n, batch), np.nan)
    return Replicas(
        fit_devices=fit_batch,
        fits=fits,
        latency_ok=latency_ok,
        latency_devices=latency_devices,
        devices=np.where(exists, n, np.nan),
        max_batch=max_batch,
        step_s=step,
    )


def _max_batch(model: StepModel, hw: Hardware, n: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Largest b >= 0 that fits n devices and meets the SLO (inf where nothing bounds it)."""
    slo = model.slo_s[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        room = n * usable[None, :] - model.memory_fixed_bytes[:, None]
        per = model.memory_per_sequence_bytes[:, None]
        by_memory = np.where(per > 0, room / per, np.where(room >= 0, np.inf, 0.0))
        c = comm_s_per_sequence(model, hw) * (n - 1) / n
        bw = hw.bandwidth_bytes_per_s
        budget = slo - fixed_s(model, hw)
        fixed = model.step_fixed_bytes[:, None] / (n * bw)
        by_bytes = (budget - fixed) / (model.step_bytes_per_sequence[:, None] / (n * bw) + c)
        by_flops = budget / (model.step_flops_per_sequence[:, None] / (n * hw.flops_per_s) + c)
        by_slo = np.where(np.isnan(slo), np.inf, np.minimum(by_bytes, by_flops))
    best = np.minimum(by_memory, by_slo)
    return np.asarray(np.where(np.isfinite(best), np.floor(np.clip(best, 0, None) + _EPS), best))


def pool_hardware(projector: Projector, catalog: pd.DataFrame) -> Hardware:
    """The fleet's models: catalog memory and interconnect, calibrated ceilings."""
    table = catalog.set_index("accelerator_id").reindex(projector.fleet.models)
    peak_index = lookup(projector.workloads["precision"].to_numpy(dtype=object), PEAK_INDEX)
    interconnect = (
        table["interconnect_bandwidth_bytes_per_s"]
        if "interconnect_bandwidth_bytes_per_s" in table
        else pd.Series(np.nan, index=table.index)
    )
    return Hardware(
        memory_bytes=table["memory_bytes"].to_numpy(dtype=float),
        bandwidth_bytes_per_s=projector.workload_bandwidth(),
        flops_per_s=projector.ceilings.flops[projector.phase_index, :, peak_index],
        interconnect_bytes_per_s=interconnect.to_numpy(dtype=float, na_value=np.nan),
        overhead_s=projector.ceilings.overhead_s[projector.phase_index],
    )


def missing_interconnect(catalog: pd.DataFrame, models: list[str]) -> list[str]:
    """The ``models`` whose catalog row has no interconnect bandwidth: replicas spanning
    several of them are timed without communication."""
    if "interconnect_bandwidth_bytes_per_s" not in catalog:
        return list(models)
    known = catalog.set_index("accelerator_id")["interconnect_bandwidth_bytes_per_s"]
    return [m for m in models if pd.isna(known.get(m))]
