"""One step of a workload as lines in its batch b: what a replica is sized and timed by.

Per workload everything is linear in the batch b (sequences per step):

- memory(b)   = M0 + b·Ms            weights (+ fixed buffers) and the KV cache of b sequences
- bytes(b)    = B0 + b·Bs            memory traffic of one step
- flops(b)    = b·Fs                 FLOPs of one step
- allreduce(b)= b·A                  activation bytes all-reduced per step, summed over blocks
- calls       = C                    all-reduce calls per step (each pays the link's latency)

A = 2·L·t·h·b_a for a model of L layers and hidden size h with activations of b_a bytes, t
tokens per sequence in a step (1 in decode, the prompt in prefill): one all-reduce of the
activations after the attention block and one after the FFN block of every layer
(Megatron-style tensor parallelism). A ring all-reduce over n devices moves 2(n−1)/n of each
message through every device's link (:func:`ring_allreduce_s`); C = 2·L calls a step, each
paying the link's fixed latency (:mod:`tasks.analysis.supply.collectives`). Both are written
here once:
the projection's replicas (:mod:`tasks.analysis.supply.replicas`) and ``memwall predict``
(:mod:`tasks.analysis.supply.predict`) read them.

That is the tensor-parallel replica an engine launches by default, its devices chosen by the
sizing. A decode or prefill row made from a model preset that states its ``layout``
(:mod:`tasks.analysis.workload.layout`: ``dp_attention=8,ep=8``) is served on exactly that
layout's N devices instead: its lines are those of the layout's busiest device
(:func:`~tasks.analysis.workload.layout_figures.layout_figures`: weights, KV cache and activations
held, bytes read and FLOPs), times N, so that the sizing's "whole step over n devices" at
n = N gives the layout's own per-device figures (an MLA latent cache copied on every device of
an attention group, attention weights copied on every group). Its C is the layout's
collective calls, and A the bytes its collectives move through a device's link at the row's
batch, per sequence, over the ring factor 2(N−1)/N: the sizing's all-reduce term then equals
the layout's link time at that batch. ``fixed_devices`` holds N (NaN: sized by memory).

Two things the tensor-parallel lines above cannot say, for rows made from a preset that state no
layout:

- **Copies.** An MLA model's latent KV cache is not split by heads: under tensor parallelism
  every device of the replica holds and reads the whole cache of the batch
  (:mod:`tasks.analysis.workload.layout`), so ``memory(b)`` on n devices is
  ``(M0 + b·Ms)/n + b·Mc`` and a decode step's bytes per device ``(B0 + b·Bs)/n + b·Bc``,
  with ``Mc`` the latent cache of one sequence and ``Bc`` its read (taken out of ``Ms`` and
  ``Bs``). Both are 0 for every other row (a GQA or MHA cache splits by heads).
- **Device counts.** An engine can lay a model out on some device counts only (its heads,
  expert widths and layers must split: :func:`~tasks.analysis.workload.layout.engine_layout`);
  DeepSeek-V3 fits six H200s by memory but no engine runs it on six. :meth:`StepModel.laid_out`
  rounds a count up to the next one the row's model can be laid out on (any count for a row
  without a preset).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Final, TypeVar

import numpy as np
import pandas as pd

from hardware_profiles.errors import MemwallError
from tasks.analysis.workload.architecture import Architecture
from tasks.analysis.workload.layout import Layout, LayoutError, engine_layout, stated_layout
from tasks.analysis.workload.layout_figures import LayoutFigures, layout_figures
from tasks.analysis.workload.number_formats import BYTES_PER_ELEMENT
from tasks.analysis.workload.presets import estimate_workload, preset
from tasks.analysis.workload.step_overhead import overheads_per_unit
from tasks.analysis.workload.variants import decode_split
from tasks.analysis.workload.workload_model import Estimate

DEFAULT_MAX_DEVICES_PER_REPLICA = 8
_MODEL_KEYS = (
    "model_preset",
    "phase",
    "batch",
    "context_tokens",
    "precision",
    "weight_precision",
    "kv_precision",
    "layout",
)

# Tensor parallelism all-reduces the activations after the attention and the FFN block.
ALLREDUCES_PER_LAYER = 2
Number = TypeVar("Number", float, np.ndarray)


def allreduce_bytes_per_sequence(
    layers: Number, tokens: Number, hidden: Number, activation_bytes: Number
) -> Number:
    """A: the activation bytes one sequence all-reduces in a step, summed over its
    :data:`ALLREDUCES_PER_LAYER` all-reduces per layer."""
    message: Number = ALLREDUCES_PER_LAYER * layers * tokens * hidden * activation_bytes
    return message


def ring_allreduce_s(message_bytes: Number, devices: Number, link_bytes_per_s: Number) -> Number:
    """Time of a ring all-reduce of ``message_bytes`` over ``devices`` (each moving 2(n−1)/n
    of the message through its link of ``link_bytes_per_s`` per direction); latency not
    counted."""
    seconds: Number = 2 * (devices - 1) / devices * message_bytes / link_bytes_per_s
    return seconds


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
    collective_calls: np.ndarray  # all-reduce calls per step when split (0: unknown)
    fixed_devices: np.ndarray  # a stated layout's devices (NaN: sized by memory)
    memory_copied_per_sequence_bytes: np.ndarray  # Mc: held whole on every device
    step_copied_bytes_per_sequence: np.ndarray  # Bc: read whole by every device, a step
    counts_row: np.ndarray  # int: each workload's row of count_table
    count_table: np.ndarray  # (shapes, K + 2): the next laid-out count >= k, inf past K

    def take(self, rows: np.ndarray) -> StepModel:
        return replace(self, **{name: getattr(self, name)[rows] for name in _PER_WORKLOAD})

    def with_rows(self, rows: np.ndarray, other: StepModel) -> StepModel:
        """These coefficients, with ``rows`` replaced by ``other``'s (in order)."""
        merged: dict[str, np.ndarray] = {}
        for name in _PER_WORKLOAD:
            values = getattr(self, name).copy()
            values[rows] = getattr(other, name)
            merged[name] = values
        mine = _widened(self.count_table, other.count_table)
        theirs = _widened(other.count_table, self.count_table)
        merged["counts_row"][rows] = other.counts_row + len(mine)
        return replace(self, **merged, count_table=np.concatenate([mine, theirs]))

    def laid_out(self, devices: np.ndarray) -> np.ndarray:
        """The fewest devices at or above ``devices`` (shape (workloads, ...)) each row's model
        can be laid out on; inf where none is within the table (NaN stays NaN)."""
        top = self.count_table.shape[1] - 1
        n = np.asarray(devices, dtype=float)
        index = np.clip(np.where(np.isfinite(n), np.ceil(n - _EPS), top), 0, top).astype(int)
        rows = self.counts_row.reshape(self.counts_row.shape + (1,) * (n.ndim - 1))
        return np.asarray(np.where(np.isnan(n), np.nan, self.count_table[rows, index]))

    def largest_laid_out(self, devices: np.ndarray) -> np.ndarray:
        """The most devices at or below ``devices`` each row's model can be laid out on (0
        where none)."""
        top = self.count_table.shape[1] - 1
        counts = np.arange(top + 1, dtype=float)
        valid = np.where(self.count_table == counts, counts, 0.0)
        floor = np.maximum.accumulate(valid, axis=1)  # the most valid count <= k
        n = np.asarray(devices, dtype=float)
        index = np.clip(np.floor(np.nan_to_num(n, nan=0.0, posinf=top) + _EPS), 0, top)
        rows = self.counts_row.reshape(self.counts_row.shape + (1,) * (n.ndim - 1))
        return np.asarray(floor[rows, index.astype(int)])

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


_PER_WORKLOAD: Final = tuple(f.name for f in fields(StepModel) if f.name != "count_table")
_EPS: Final = 1e-9


def _widened(table: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``table`` with as many columns as the wider of the two, past its own end inf."""
    width = max(table.shape[1], like.shape[1])
    if table.shape[1] == width:
        return table
    pad = np.full((table.shape[0], width - table.shape[1]), np.inf)
    return np.concatenate([table, pad], axis=1)


def _count_row(arch: Architecture | None, top: int) -> np.ndarray:
    """k -> the fewest devices >= k (k = 0..top+1) an engine can lay ``arch`` out on, inf past
    ``top``; every count for no architecture."""
    ok = np.ones(top + 2, dtype=bool)
    ok[0] = False
    ok[top + 1] = False
    if arch is not None:
        for k in range(1, top + 1):
            try:
                engine_layout(arch, k)
            except LayoutError:
                ok[k] = False
    out = np.full(top + 2, np.inf)
    nearest = np.inf
    for k in range(top, -1, -1):
        if ok[k]:
            nearest = float(k)
        out[k] = nearest
    return out


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
    calls = np.zeros(n)

    fixed = np.full(n, np.nan)
    mc, bc = np.zeros(n), np.zeros(n)
    _fill_from_presets(workloads, m0, ms, b0, bs, fs, allreduce, calls, fixed, mc, bc)
    slo = np.where(
        decode,
        _column(workloads, "tpot_slo_s", np.nan),
        np.where(prefill, _column(workloads, "ttft_slo_s", np.nan), np.nan),
    )
    cap = np.nan_to_num(
        _column(workloads, "max_devices_per_replica", DEFAULT_MAX_DEVICES_PER_REPLICA),
        nan=DEFAULT_MAX_DEVICES_PER_REPLICA,
    )
    cap = np.where(np.isnan(fixed), cap, fixed)
    times = overheads_per_unit(workloads) * np.where(prefill, batch * context, batch)
    counts_row, count_table = _device_counts(workloads, cap, fixed)
    return StepModel(
        m0, ms, b0, bs, fs, allreduce, batch, slo, cap, times, calls, fixed, mc, bc,
        counts_row, count_table,
    )  # fmt: skip


def _device_counts(
    workloads: pd.DataFrame, cap: np.ndarray, fixed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's index into a table of laid-out device counts (one row of the table per
    model preset, and one for rows a count cannot refuse: no preset, a stated layout, a
    training row), up to the largest cap."""
    finite = cap[np.isfinite(cap)]
    top = int(max(finite.max(initial=DEFAULT_MAX_DEVICES_PER_REPLICA), 1))
    names = (
        workloads["model_preset"].astype(object)
        if "model_preset" in workloads
        else pd.Series(None, index=workloads.index, dtype=object)
    )
    serving = workloads["phase"].isin(["decode", "prefill"]).to_numpy()
    keys = names.where(pd.Series(serving & np.isnan(fixed), index=names.index) & names.notna())
    codes, uniques = pd.factorize(keys)  # -1: a row a count cannot refuse
    rows = [_count_row(None, top)]
    for name in uniques:
        try:
            arch: Architecture | None = preset(str(name))
        except MemwallError:
            arch = None
        rows.append(_count_row(arch, top))
    index = np.asarray(codes, dtype=np.int64) + 1
    return index, np.vstack(rows)


def _fill_from_presets(
    workloads: pd.DataFrame,
    m0: np.ndarray,
    ms: np.ndarray,
    b0: np.ndarray,
    bs: np.ndarray,
    fs: np.ndarray,
    allreduce: np.ndarray,
    calls: np.ndarray,
    fixed: np.ndarray,
    mc: np.ndarray,
    bc: np.ndarray,
) -> None:
    """Overwrite the coefficients of rows made from a model preset with the workload model's
    (each distinct model, phase, batch, context, precision and layout estimated once); a
    stated layout that cannot split the model raises its
    :class:`~tasks.analysis.workload.layout.LayoutError`, listing the valid ones."""
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
        rows = modelled[positions]
        layout = stated_layout(row)
        if layout is not None:
            lines = _layout_lines(arch, first, second, layout)
            m0[rows], ms[rows], b0[rows], bs[rows], fs[rows] = lines[:5]
            allreduce[rows], calls[rows], fixed[rows] = lines[5:]
            continue
        context = first.context
        points = []
        for e in (first, second):
            units = _units_per_step(e.phase, e.batch, context)
            points.append((e.batch, e.memory_footprint_bytes, e.bytes_per_unit * units))
        (x1, mem1, bytes1), (x2, mem2, bytes2) = points
        ms[rows] = (mem2 - mem1) / (x2 - x1)
        m0[rows] = mem1 - ms[rows] * x1
        bs[rows] = (bytes2 - bytes1) / (x2 - x1)
        b0[rows] = bytes1 - bs[rows] * x1
        fs[rows] = second.flops_per_unit * _units_per_step(second.phase, x2, context) / x2
        if arch.is_mla:
            # The latent of one sequence, held (and at decode read) whole on every device.
            latent = first.kv_bytes_per_token * context
            mc[rows] = min(latent, ms[rows][0])
            ms[rows] -= mc[rows]
            if first.phase == "decode":
                bc[rows] = min(latent, bs[rows][0])
                bs[rows] -= bc[rows]
        tokens = 1 if first.phase == "decode" else context
        b_a = BYTES_PER_ELEMENT[first.activations]
        allreduce[rows] = allreduce_bytes_per_sequence(arch.layers, tokens, arch.hidden, b_a)
        calls[rows] = ALLREDUCES_PER_LAYER * arch.layers


def _layout_lines(
    arch: Architecture, first: Estimate, second: Estimate, layout: Layout
) -> tuple[float, ...]:
    """(M0, Ms, B0, Bs, Fs, A, C, N) of a stated layout (the module docstring), from its
    busiest device's figures at batch 1 (``first``) and at the row's batch (``second``)."""
    n = float(layout.devices)
    one, at = layout_figures(arch, first, layout), layout_figures(arch, second, layout)
    x1, x2 = float(first.batch), float(second.batch)

    def held(f: LayoutFigures) -> float:
        return f.weight_bytes_per_device + f.kv_bytes_per_device + f.activation_bytes_per_device

    ms = n * (held(at) - held(one)) / (x2 - x1)
    bs = n * (at.step_bytes_per_device - one.step_bytes_per_device) / (x2 - x1)
    link_bytes = sum(c.calls * c.link_bytes() for c in at.collectives)
    ring = 2 * (n - 1) / n
    return (
        n * held(one) - ms * x1,
        ms,
        n * one.step_bytes_per_device - bs * x1,
        bs,
        n * at.step_flops_per_device / x2,
        link_bytes / x2 / ring if ring else 0.0,
        float(sum(c.calls for c in at.collectives)),
        n,
    )
