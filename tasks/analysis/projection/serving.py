"""The replica each workload is reported on, and the batch it is served at: sized once.

Replicas are sized (:mod:`tasks.analysis.supply.replicas`) on every model of the fleet, from the
workloads' step model (:mod:`tasks.analysis.workload.step_model`); the one reported (devices, max
batch, model) is on the model the pool holds most of in the workload's first served month,
preferring models a replica can be formed on. The projection evaluates supply at the served batch
and pays each step's overhead on the reported replica's devices; the walls read the same record.

The replica's layout: a decode or prefill row that states one (``layout``) is served on exactly
that layout, its devices and its busiest device's bytes (:mod:`tasks.analysis.workload.step_model`);
a row that states none on the fewest devices that hold it, laid out as an engine launches a model
on that many devices (:func:`~tasks.analysis.workload.layout.engine_layout`: tensor parallel over
all of them). ``layout`` and ``layout_reason`` say which, and why, per workload. The supply of a
row on a stated layout is what that layout delivers (:func:`on_stated_layouts`): its FLOPs and
bytes per unit become the busiest device's per step times the devices of a pipeline stage, over
the step's units, so that a layout which copies part of the step on every device (an MLA latent
cache under tensor parallelism, attention weights on every attention-data-parallel group) or
waits for its busiest expert rank supplies less per device than the one-device figures say.
A row that states none is sized on a device count its model can be laid out on, with an MLA
latent held whole on every device (:mod:`tasks.analysis.workload.step_model`), and supplies
what that replica reads: its copies of the latent too (:func:`with_copied_reads`).

The batch a workload is served at is its own, unless its latency target caps it lower.

A replica's throughput is set by the largest batch that fits it and meets the workload's SLO
(``max_batch``, :mod:`tasks.analysis.supply.replicas`). Where a decode or prefill workload has a
target (``tpot_slo_s`` / ``ttft_slo_s``) and 1 <= max_batch < batch, the projection evaluates its
supply at max_batch: the weights are read once per step for fewer sequences, so each unit costs more
bytes. The rows are re-derived as the batch mitigation re-derives them: rows made from a model
preset by the workload model, exactly (:func:`modelled_figures` at the served batch); decode rows
without one by scaling the weights' share of bytes per token, bytes = KV + W·B/b
(:func:`decode_split`); rows that cannot be split keep their figures (an optimistic bound).

Where max_batch is 0 (batch 1 misses the target: a latency wall) the figures are kept: no batch
meets the target, the latency wall reports it, and the supply stays what the hardware could
serve without the target. The walls keep reading the workload's own batch (capacity is about
the batch the workload asks for); only the supply is evaluated at the served batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tasks.analysis.projection.horizon import NEVER, Fleet
from tasks.analysis.projection.placement import Placement
from tasks.analysis.supply.ceilings import PEAK_INDEX, Ceilings, lookup
from tasks.analysis.supply.replicas import Hardware, Replicas, hardware, size_replicas
from tasks.analysis.workload.layout import (
    SERVING_PHASES,
    Layout,
    LayoutError,
    engine_layout,
    parse_layout,
)
from tasks.analysis.workload.presets import PRESETS
from tasks.analysis.workload.step_model import StepModel, step_model
from tasks.analysis.workload.variants import decode_split, modelled_figures


@dataclass(frozen=True)
class Serving:
    """How every workload is served, sized once per projection: its step model, the fleet's
    models as it meets them and its replicas on each (workloads, models); the reported
    replica's devices (NaN where none forms or never served), max batch and model (None);
    the batch its SLO caps it to (NaN: its own) and the workload table at that batch."""

    step: StepModel
    hardware: Hardware
    replicas: Replicas
    devices: np.ndarray
    max_batch: np.ndarray
    accelerator: np.ndarray
    served_batch: np.ndarray
    workloads: pd.DataFrame
    layout: np.ndarray  # object: the reported replica's layout ("tp=8"), None where none forms
    layout_reason: np.ndarray  # object: why that layout ("as the workload states", ...)

    @property
    def replica_devices(self) -> np.ndarray:
        """Devices that pay each step's overhead: the reported replica's, 1 where none."""
        return np.where(np.isfinite(self.devices), self.devices, 1.0)


def serve(
    workloads: pd.DataFrame,
    fleet: Fleet,
    placement: Placement,
    ceilings: Ceilings,
    catalog: pd.DataFrame,
) -> Serving:
    """Size every workload's replicas on the fleet's models and the batch it is served at."""
    step = step_model(workloads)
    peak_index = lookup(workloads["precision"].to_numpy(dtype=object), PEAK_INDEX)
    hw = hardware(catalog, ceilings, fleet.models, placement.phase_index, peak_index)
    replicas = size_replicas(step, hw)
    devices, max_batch, accelerator = reported_replica(fleet, placement, replicas)
    inference = workloads["phase"].isin(["decode", "prefill"]).to_numpy()
    with np.errstate(invalid="ignore"):
        capped = inference & ~np.isnan(step.slo_s) & (max_batch >= 1) & (max_batch < step.batch)
    served = np.where(capped, max_batch, np.nan)
    layout, reason = replica_layouts(workloads, devices, step.fixed_devices)
    return Serving(
        step=step,
        hardware=hw,
        replicas=replicas,
        devices=devices,
        max_batch=max_batch,
        accelerator=accelerator,
        served_batch=served,
        workloads=with_copied_reads(
            on_stated_layouts(at_batch(workloads, served), step, served), step, devices
        ),
        layout=layout,
        layout_reason=reason,
    )


STATED = "as the workload states"


def replica_layouts(
    workloads: pd.DataFrame, devices: np.ndarray, fixed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per workload: the layout of its replica of ``devices`` devices and why (None, None where
    no replica forms): the row's own where it was sized on it (``fixed``: its devices, NaN
    where not); else the engine's default for the row's model on that many devices; tensor
    parallel over them for a row that names no model (a layout it states cannot be laid out
    without one, and the reason says so). A fleet's table repeats a few shapes over many rows:
    each distinct (model, stated layout, devices) is laid out once."""
    n = len(workloads)
    layout = np.full(n, None, dtype=object)
    reason = np.full(n, None, dtype=object)
    rows = np.flatnonzero(np.isfinite(devices))
    if rows.size == 0:
        return layout, reason
    absent = pd.Series(None, index=workloads.index, dtype=object)
    serving = workloads["phase"].isin(list(SERVING_PHASES)).to_numpy()

    def text(column: str) -> np.ndarray:
        cells = workloads.get(column, absent)
        return np.asarray(cells.astype(object).where(cells.notna(), None).to_numpy()[rows])

    shapes = pd.DataFrame(
        {
            "model": text("model_preset"),
            "layout": text("layout"),
            "devices": devices[rows].astype(np.int64),
            "sized_on_it": ~np.isnan(fixed[rows]),
            "serving": serving[rows],
        }
    )
    codes, _ = pd.factorize(pd.MultiIndex.from_frame(shapes.astype(str)))
    first = np.unique(codes, return_index=True)[1]  # a row of each shape, in code order
    laid = [_laid_out(*shape) for shape in shapes.iloc[first].itertuples(index=False)]
    layout[rows] = np.array([text for text, _ in laid], dtype=object)[codes]
    reason[rows] = np.array([why for _, why in laid], dtype=object)[codes]
    return layout, reason


def _laid_out(
    model: str | None, layout: str | None, devices: int, sized_on_it: bool, serving: bool
) -> tuple[str, str]:
    """One shape's layout and why (:func:`replica_layouts`)."""
    if sized_on_it:
        return str(parse_layout(str(layout))), STATED
    if model is None or str(model) not in PRESETS:
        ignored = (
            f"; its layout {layout} needs a model to lay out"
            if serving and layout is not None
            else ""
        )
        return str(Layout(tp=devices)), (
            f"tensor parallel over {devices} devices (the row names no model preset{ignored})"
        )
    try:
        picked, why = engine_layout(PRESETS[str(model)], devices)
    except LayoutError as exc:
        return str(Layout(tp=devices)), f"tensor parallel as sized ({exc})"
    return str(picked), why


def reported_replica(
    fleet: Fleet, placement: Placement, replicas: Replicas
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The replica on the model the pool holds most of in the workload's first served month,
    preferring models a replica can be formed on: devices, max batch and model."""
    first = np.where(placement.served_from == NEVER, 0, placement.served_from)
    held = fleet.counts[placement.pool_index, :, first]  # (workloads, models)
    formable = replicas.fits & replicas.latency_ok & (replicas.devices <= held)
    score = held * (1 + 2 * formable)
    pick = score.argmax(axis=1)
    rows = np.arange(len(pick))
    never = placement.served_from == NEVER
    models = np.array(fleet.models, dtype=object)
    return (
        np.where(never, np.nan, replicas.devices[rows, pick]),
        np.where(never, np.nan, replicas.max_batch[rows, pick]),
        np.asarray(np.where(never, None, models[pick])),
    )


def at_batch(workloads: pd.DataFrame, served: np.ndarray) -> pd.DataFrame:
    """``workloads`` with batch, flops_per_unit, bytes_per_unit and memory_footprint_bytes
    re-derived at the ``served`` batch where it is finite (see the module docstring; memory
    is the replica model's M0 + b·Ms); the table itself where none is."""
    rows = np.flatnonzero(np.isfinite(served))
    if rows.size == 0:
        return workloads
    subset = workloads.iloc[rows].copy()
    batch = served[rows]
    weights, kv = decode_split(subset)
    approximate = kv + weights * subset["batch"].to_numpy(dtype=float) / batch
    model = step_model(subset)
    memory = model.memory_fixed_bytes + batch * (
        model.memory_per_sequence_bytes + model.memory_copied_per_sequence_bytes
    )
    subset["batch"] = batch.astype(np.int64)
    flops, nbytes = modelled_figures(subset)
    nbytes = np.where(np.isnan(nbytes), approximate, nbytes)
    out = workloads.copy()
    for column, derived in (
        ("flops_per_unit", flops),
        ("bytes_per_unit", nbytes),
        ("memory_footprint_bytes", memory),
    ):
        values = workloads[column].to_numpy(dtype=float).copy()
        values[rows] = np.where(np.isnan(derived), values[rows], derived)
        out[column] = values
    served_column = workloads["batch"].copy()
    served_column.iloc[rows] = batch.astype(np.int64)
    out["batch"] = served_column
    return out


def on_stated_layouts(workloads: pd.DataFrame, step: StepModel, served: np.ndarray) -> pd.DataFrame:
    """``workloads`` with the FLOPs and bytes per unit of every row that states its serving
    layout (``step.fixed_devices`` finite) as that layout spends them at the served batch b
    (the row's own where ``served`` is NaN): the step model's lines are N x the busiest
    device's, so a stage of N/pp devices spends (B0 + b·Bs)/pp bytes and b·Fs/pp FLOPs a
    step (pp stages each hold another step in flight) for b units (decode) or b·context
    (prefill). Nothing changes for the other rows."""
    rows = np.flatnonzero(~np.isnan(step.fixed_devices))
    if rows.size == 0:
        return workloads
    batch = np.where(np.isfinite(served), served, step.batch)[rows]
    phase = workloads["phase"].to_numpy(dtype=object)[rows]
    context = workloads["context_tokens"].to_numpy(dtype=float)[rows]
    units = np.where(phase == "prefill", batch * context, batch)
    texts = workloads["layout"].astype(str).to_numpy(dtype=object)[rows]
    stages = {t: parse_layout(t).pp for t in set(texts)}
    pp = np.array([stages[t] for t in texts], dtype=float)
    out = workloads.copy()
    for column, per_step in (
        (
            "bytes_per_unit",
            step.step_fixed_bytes[rows] + batch * step.step_bytes_per_sequence[rows],
        ),
        ("flops_per_unit", batch * step.step_flops_per_sequence[rows]),
    ):
        values = out[column].to_numpy(dtype=float).copy()
        values[rows] = per_step / pp / units
        out[column] = values
    return out


def with_copied_reads(
    workloads: pd.DataFrame, step: StepModel, devices: np.ndarray
) -> pd.DataFrame:
    """``workloads`` with the bytes per unit of every row whose devices each read part of the
    step whole (``step.step_copied_bytes_per_sequence``, an MLA latent cache under the
    engine's tensor parallelism) as its reported replica of n devices spends them: the row's
    own figures read each sequence's copied bytes Bc once, the replica reads them n times, so
    a decode token costs (n − 1)·Bc more. Nothing changes for the other rows, or where no
    replica forms."""
    rows = np.flatnonzero((step.step_copied_bytes_per_sequence > 0) & np.isfinite(devices))
    if rows.size == 0:
        return workloads
    out = workloads.copy()
    values = out["bytes_per_unit"].to_numpy(dtype=float).copy()
    values[rows] += (devices[rows] - 1) * step.step_copied_bytes_per_sequence[rows]
    out["bytes_per_unit"] = values
    return out
