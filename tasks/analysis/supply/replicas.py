"""Replicas: how many devices one copy of a workload's model spans, the largest batch it can
hold and serve within its latency target, and how long one step takes on it.

A workload is served by replicas of n devices (tensor parallel: every weight matrix split n
ways). Per workload everything is linear in the batch b (sequences per step), with the
coefficients of :class:`~tasks.analysis.workload.step_model.StepModel` (memory M0 + b·Ms, bytes
B0 + b·Bs, FLOPs b·Fs, all-reduced activation bytes b·A).

On an accelerator model h (usable memory fraction f = DEFAULT_USABLE_MEMORY_FRACTION, memory
Mem_h, calibrated bandwidth BW_h and FLOP/s F_h, interconnect IC_h per device per direction):

- devices to hold batch b:  n_fit(b) = max(1, ceil((M0 + b·Ms) / (f·Mem_h − b·Mc))), raised to
  the next count the row's model can be laid out on (:meth:`StepModel.laid_out`)
- step time on n devices:   step(n, b) = max(bytes(b)/(n·BW_h), flops(b)/(n·F_h)) + b·Bc/BW_h
  + comm(n, b) + o + λ(n), with Mc and Bc what every device holds and reads whole (an MLA
  latent cache under tensor parallelism; 0 for other rows)
- comm(n, b) = 2·(n−1)/n · b·A / IC_h, the ring all-reduce of
  :func:`~tasks.analysis.workload.step_model.ring_allreduce_s`. Where IC_h or A
  is unknown the term is 0 and :data:`NO_COMM_NOTE` says so.
- λ(n) = C · lat_h for n > 1 (0 on one device): the all-reduce calls of a step, each paying the
  link's fixed latency (:mod:`tasks.analysis.supply.collectives`, with its source); o is the
  fitted step overhead, which stands for what is left beside it.
- decode: the time per output token (TPOT) is step(n, b); prefill: the time to first token
  (TTFT) of b prompts processed together is step(n, b).
- replica: the fewest n <= cap (max_devices_per_replica, default 8) that hold the workload's
  batch B and meet its SLO at batch 1; a **capacity wall** when n_fit(B) > cap, a **latency
  wall** when no n in [n_fit(1), cap] gives step(n, 1) <= SLO. As step(n, 1) = K + (S1 − K)/n
  + o + λ with S1 the one-device time and K = 2·A/IC, it falls with n when S1 > K (the fewest
  n > 1 meeting the SLO is ceil((S1 − K)/(SLO − K − o − λ))) and rises otherwise (only n_fit(1)
  can meet it).
- a workload that states its serving layout is served on that layout's N devices, no fewer
  and no more (:mod:`tasks.analysis.workload.step_model` gives its lines as the layout's busiest
  device's times N): a **capacity wall** when memory(B) > N·f·Mem_h, a **latency wall** when
  step(N, 1) > SLO.
- max batch on n devices: the largest b with memory(b) <= n·f·Mem_h and step(n, b) <= SLO:
  step is the larger of two lines in b, so b <= (n·f·Mem_h − M0)/(Ms + n·Mc),
  b <= (T − B0/(n·BW))/(Bs/(n·BW) + Bc/BW + c) and b <= T/(Fs/(n·F) + c), with
  c = 2(n−1)/n · A/IC and T = SLO − o − λ(n).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from tasks.analysis.supply.ceilings import Ceilings
from tasks.analysis.supply.collectives import link_latency_s
from tasks.analysis.workload.step_model import StepModel, ring_allreduce_s
from tasks.analysis.workload.workload_model import DEFAULT_USABLE_MEMORY_FRACTION

NO_COMM_NOTE = (
    "no tensor-parallel communication counted where the catalog has no interconnect bandwidth "
    "or the workload no model architecture"
)
_EPS = 1e-9  # ceil/floor of quotients that are integers up to rounding


@dataclass(frozen=True)
class Hardware:
    """Per accelerator model (arrays of shape (models,)); bandwidth and FLOP/s per workload and
    model, since the calibrated ceilings depend on the workload's phase (and precision)."""

    memory_bytes: np.ndarray
    bandwidth_bytes_per_s: np.ndarray  # (workloads, models), at each workload's phase
    flops_per_s: np.ndarray  # (workloads, models), at each workload's phase and precision
    interconnect_bytes_per_s: np.ndarray  # NaN: unknown
    overhead_s: np.ndarray  # (workloads, models): the phase's step overhead figure
    link_latency_s: np.ndarray  # per collective call; 0 where the link is unknown

    def take(self, rows: np.ndarray) -> Hardware:
        """The same models, met by the workloads of ``rows`` only."""
        return replace(
            self,
            bandwidth_bytes_per_s=self.bandwidth_bytes_per_s[rows],
            flops_per_s=self.flops_per_s[rows],
            overhead_s=self.overhead_s[rows],
        )


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
    """n_fit(b): the fewest devices the row's model can be laid out on whose memory holds
    (M0 + b·Ms)/n + b·Mc each; inf where the copied part alone overflows a device."""
    split = model.memory_fixed_bytes[:, None] + b * model.memory_per_sequence_bytes[:, None]
    room = usable[None, :] - b * model.memory_copied_per_sequence_bytes[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.where(room > 0, split / room, np.inf)
    return model.laid_out(np.maximum(1.0, np.ceil(need - _EPS)))


def one_device_step_s(model: StepModel, hw: Hardware, b: np.ndarray | float) -> np.ndarray:
    """max(bytes(b)/BW, flops(b)/F) on one device, (workloads, models), the copied reads
    left out (:func:`copied_s`)."""
    memory = (
        model.step_fixed_bytes[:, None] + b * model.step_bytes_per_sequence[:, None]
    ) / hw.bandwidth_bytes_per_s
    compute = b * model.step_flops_per_sequence[:, None] / hw.flops_per_s
    return np.asarray(np.maximum(memory, compute))


def copied_s(model: StepModel, hw: Hardware, b: np.ndarray | float) -> np.ndarray:
    """b·Bc/BW: the reads every device of the replica makes whole (an MLA latent cache under
    tensor parallelism), whatever n; added to the step, as at decode the step is bound by
    memory where these reads count."""
    return np.asarray(b * model.step_copied_bytes_per_sequence[:, None] / hw.bandwidth_bytes_per_s)


def comm_s_per_sequence(model: StepModel, hw: Hardware) -> np.ndarray:
    """2·A/IC: the all-reduce time per sequence as n grows large; 0 where unknown."""
    per = 2 * model.allreduce_bytes_per_sequence[:, None] / hw.interconnect_bytes_per_s[None, :]
    return np.asarray(np.nan_to_num(per, nan=0.0))


def fixed_s(model: StepModel, hw: Hardware) -> np.ndarray:
    """o: the step overhead (:mod:`tasks.analysis.supply.predict`), whatever n and b,
    (workloads, models)."""
    return np.asarray(model.overhead_times[:, None] * hw.overhead_s)


def latency_s(model: StepModel, hw: Hardware, n: np.ndarray) -> np.ndarray:
    """λ(n) = C · lat for a replica of n > 1 devices, 0 on one, (workloads, models)."""
    per_call = model.collective_calls[:, None] * hw.link_latency_s[None, :]
    return np.asarray(np.where(n > 1, per_call, 0.0))


def step_s(model: StepModel, hw: Hardware, n: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """step(n, b) = one-device step / n + b·Bc/BW + 2(n−1)/n · b·A/IC + o + λ(n)."""
    message = b * model.allreduce_bytes_per_sequence[:, None]
    comm = np.nan_to_num(ring_allreduce_s(message, n, hw.interconnect_bytes_per_s[None, :]))
    return np.asarray(
        one_device_step_s(model, hw, b) / n
        + copied_s(model, hw, b)
        + comm
        + fixed_s(model, hw)
        + latency_s(model, hw, n)
    )


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
    o = fixed_s(model, hw) + latency_s(model, hw, np.full_like(s1, 2.0)) + copied_s(model, hw, 1.0)
    top = np.maximum(model.largest_laid_out(np.broadcast_to(cap, s1.shape)), fit_one)
    with np.errstate(divide="ignore", invalid="ignore"):
        at_fit = step_s(model, hw, fit_one, 1.0)
        at_cap = step_s(model, hw, top, 1.0)
        # step(n, 1) = (s1 − k)/n + k + o + λ <= slo  <=>  n >= (s1 − k)/(slo − k − o − λ)
        falling = (s1 > k) & (slo > k + o)
        needed = np.where(falling, model.laid_out(np.ceil((s1 - k) / (slo - k - o) - _EPS)), np.inf)
    latency_devices = np.where(~has_slo | (at_fit <= slo), fit_one, np.maximum(needed, fit_one))
    latency_ok = ~has_slo | ((fit_one <= cap) & (np.minimum(at_fit, at_cap) <= slo))
    # A stated layout (its devices are the cap, see step_model): exactly its N devices.
    stated = np.broadcast_to(~np.isnan(model.fixed_devices)[:, None], fits.shape)
    with np.errstate(invalid="ignore"):
        stated_fast = ~has_slo | (at_cap <= slo)
    latency_ok = np.where(stated, stated_fast & (fit_one <= cap), latency_ok)
    latency_devices = np.where(stated, np.where(latency_ok, cap, np.inf), latency_devices)
    exists = fits & latency_ok
    n = np.where(exists, np.maximum(fit_batch, latency_devices), cap)
    n = np.where(stated, cap, n)
    fit_batch = np.where(stated & fits, cap, fit_batch)
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
        per = (
            model.memory_per_sequence_bytes[:, None]
            + n * model.memory_copied_per_sequence_bytes[:, None]
        )
        by_memory = np.where(per > 0, room / per, np.where(room >= 0, np.inf, 0.0))
        c = comm_s_per_sequence(model, hw) * (n - 1) / n
        bw = hw.bandwidth_bytes_per_s
        budget = slo - fixed_s(model, hw) - latency_s(model, hw, n)
        fixed = model.step_fixed_bytes[:, None] / (n * bw)
        per_bytes = (
            model.step_bytes_per_sequence[:, None] / (n * bw)
            + model.step_copied_bytes_per_sequence[:, None] / bw
        )
        by_bytes = (budget - fixed) / (per_bytes + c)
        by_flops = budget / (model.step_flops_per_sequence[:, None] / (n * hw.flops_per_s) + c)
        by_slo = np.where(np.isnan(slo), np.inf, np.minimum(by_bytes, by_flops))
    best = np.minimum(by_memory, by_slo)
    return np.asarray(np.where(np.isfinite(best), np.floor(np.clip(best, 0, None) + _EPS), best))


def hardware(
    catalog: pd.DataFrame,
    ceilings: Ceilings,
    models: list[str],
    phase_index: np.ndarray,
    peak_index: np.ndarray,
) -> Hardware:
    """``models`` as the workloads of ``phase_index`` (and compute precision ``peak_index``)
    meet them: catalog memory and interconnect, calibrated ceilings (``ceilings`` holds
    ``models`` in that order)."""
    table = catalog.set_index("accelerator_id").reindex(models)
    interconnect = table.get("interconnect_bandwidth_bytes_per_s", pd.Series(np.nan, index=models))
    vendor = table.get("vendor", pd.Series("", index=models))
    links = [
        {"vendor": v, "interconnect_bandwidth_bytes_per_s": i}
        for v, i in zip(vendor, interconnect, strict=True)
    ]
    return Hardware(
        memory_bytes=table["memory_bytes"].to_numpy(dtype=float),
        bandwidth_bytes_per_s=ceilings.bandwidth[phase_index],
        flops_per_s=ceilings.flops[phase_index, :, peak_index],
        interconnect_bytes_per_s=interconnect.to_numpy(dtype=float, na_value=np.nan),
        overhead_s=ceilings.overhead_s[phase_index],
        link_latency_s=np.array([link_latency_s(link) for link in links], dtype=float),
    )


def missing_interconnect(catalog: pd.DataFrame, models: list[str]) -> list[str]:
    """The ``models`` whose catalog row has no interconnect bandwidth: replicas spanning
    several of them are timed without communication."""
    if "interconnect_bandwidth_bytes_per_s" not in catalog:
        return list(models)
    known = catalog.set_index("accelerator_id")["interconnect_bandwidth_bytes_per_s"]
    return [m for m in models if pd.isna(known.get(m))]
