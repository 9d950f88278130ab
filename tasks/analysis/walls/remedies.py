"""What lifts a capacity or latency wall: an attention-data-parallel layout for an MLA model,
a narrower weight/KV precision on the pool's own hardware, or another accelerator model of the
catalog.

Each remedy is the replica sizing (:mod:`tasks.analysis.supply.replicas`) redone with one change, in
the month the wall is first hit:

- an MLA model (DeepSeek-V3/R1, Kimi-K2) that states no layout is sized tensor parallel, its
  latent cache held whole on every device (:mod:`tasks.analysis.workload.step_model`); served
  ``dp_attention=N,ep=N`` on the cap's N devices instead (SGLang's ``--enable-dp-attention``
  with expert parallelism), each attention group holds only its own sequences' latents;

- weights and KV cache stored at fp8, int8 or int4 (weight-only quantization: the matmuls keep
  the workload's precision, so it runs on any device); rows made from a model preset are
  re-derived by the workload model, other rows scale their bytes and memory by the ratio of
  element sizes;
- the catalog's models, calibrated as the fleet's are: those on which a replica of at most
  the cap holds the batch and meets the target at batch 1, slowest memory first (the least
  hardware that lifts it).

Speculative decoding, which trades FLOPs for fewer sequential steps, is not modelled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.analysis.projection.horizon import NEVER
from tasks.analysis.projection.projector import Projection
from tasks.analysis.projection.serving import Serving
from tasks.analysis.supply.ceilings import PEAK_INDEX, Ceilings, lookup
from tasks.analysis.supply.replicas import hardware, size_replicas
from tasks.analysis.workload.layout import SERVING_PHASES, Layout, problems
from tasks.analysis.workload.number_formats import BYTES_PER_ELEMENT
from tasks.analysis.workload.presets import PRESETS
from tasks.analysis.workload.step_model import StepModel, step_model

MODELS_LISTED = 3
# Weight-only quantization: the storage precisions tried on the pool's own hardware.
LOWER_PRECISIONS = ("fp8", "int8", "int4")
_SIZING = (
    "phase",
    "precision",
    "unit",
    "flops_per_unit",
    "bytes_per_unit",
    "memory_footprint_bytes",
    "model_preset",
    "batch",
    "context_tokens",
    "weight_precision",
    "kv_precision",
    "tpot_slo_s",
    "ttft_slo_s",
    "max_devices_per_replica",
    "layout",
)


def _stored_bytes(workloads: pd.DataFrame) -> np.ndarray:
    """Bytes per weight element as stored today (the weight precision, else the precision)."""
    stored = workloads["precision"].astype(str)
    if "weight_precision" in workloads:
        stored = workloads["weight_precision"].fillna(stored).astype(str)
    return np.asarray(stored.map(BYTES_PER_ELEMENT).to_numpy(dtype=float, na_value=np.nan))


def _at_precision(
    model: StepModel, workloads: pd.DataFrame, modelled: np.ndarray, precision: str
) -> tuple[StepModel, np.ndarray]:
    """The coefficients with weights and KV cache at ``precision``, and where that is narrower
    than today's: re-derived for rows made from a preset, scaled for the rest."""
    current = _stored_bytes(workloads)
    target = BYTES_PER_ELEMENT[precision]
    variant = model.bytes_scaled(np.where(modelled, 1.0, target / current))
    if modelled.any():
        rows = np.flatnonzero(modelled)
        exact = workloads.iloc[rows].assign(weight_precision=precision, kv_precision=precision)
        variant = variant.with_rows(rows, step_model(exact))
    return variant, np.asarray(target < current)


def _attention_data_parallel(
    model: StepModel, workloads: pd.DataFrame
) -> tuple[StepModel | None, np.ndarray]:
    """The coefficients with each MLA decode or prefill row that states no layout laid out
    ``dp_attention=N,ep=N`` on the most devices N <= its cap that split it so, and that
    layout's text per row (None where the row is not such a row or no N splits it); None
    where no row is."""
    out = np.full(len(workloads), None, dtype=object)
    if "model_preset" not in workloads:
        return None, out
    stated = (
        workloads["layout"] if "layout" in workloads else pd.Series(None, index=workloads.index)
    )
    caps = model.max_devices
    for k, (name, phase, layout) in enumerate(
        zip(workloads["model_preset"], workloads["phase"], stated, strict=True)
    ):
        if name not in PRESETS or not PRESETS[str(name)].is_mla or not pd.isna(layout):
            continue
        if phase not in SERVING_PHASES:
            continue
        arch = PRESETS[str(name)]
        for n in range(int(caps[k]), 1, -1):
            if not problems(arch, Layout(dp_attention=n, ep=n)):
                out[k] = str(Layout(dp_attention=n, ep=n))
                break
    rows = np.flatnonzero(~pd.isna(out))
    if rows.size == 0:
        return None, out
    exact = workloads.iloc[rows].assign(layout=out[rows])
    return model.with_rows(rows, step_model(exact)), out


def wall_remedies(
    projection: Projection,
    serving: Serving,
    catalog: pd.DataFrame,
    wall: np.ndarray,
    wall_index: np.ndarray,
) -> np.ndarray:
    """Per workload: what lifts its capacity or latency wall (``int4 weights+KV; or on
    nvidia-b200``), ``none found`` where nothing tried does, None for other workloads."""
    out = np.full(len(wall), None, dtype=object)
    rows = np.flatnonzero(np.isin(wall.astype(str), ["capacity", "latency"]))
    if rows.size == 0:
        return out
    workloads = projection.workloads
    # Only the columns the replica sizing reads: taking string columns costs more than sizing.
    subset = workloads[[c for c in _SIZING if c in workloads]].iloc[rows]
    pool_hw = serving.hardware.take(rows)
    month = np.where(wall_index[rows] == NEVER, 0, wall_index[rows])
    held = projection.fleet.counts[projection.placement.pool_index[rows], :, month] > 0
    found: list[list[str]] = [[] for _ in rows]
    sub = serving.step.take(rows)
    modelled = (
        subset["model_preset"].notna().to_numpy()
        if "model_preset" in subset
        else np.zeros(len(rows), dtype=bool)
    )
    laid, layouts = _attention_data_parallel(sub, subset)
    if laid is not None:
        replicas = size_replicas(laid, pool_hw)
        lifted = ~pd.isna(layouts) & (replicas.fits & replicas.latency_ok & held).any(axis=1)
        for k in np.flatnonzero(lifted):
            found[k].append(f"served {layouts[k]}")
    precise = [False] * len(rows)
    for precision in LOWER_PRECISIONS:
        variant, narrower = _at_precision(sub, subset, modelled, precision)
        replicas = size_replicas(variant, pool_hw)
        lifted = narrower & (replicas.fits & replicas.latency_ok & held).any(axis=1)
        for k in np.flatnonzero(lifted):
            if not precise[k]:  # the widest precision that lifts it is enough
                precise[k] = True
                found[k].append(("or " if found[k] else "") + f"{precision} weights+KV")
    models = catalog["accelerator_id"].astype(str).tolist()
    everywhere = hardware(
        catalog,
        Ceilings.of(projection.calibrated, models),
        models,
        projection.placement.phase_index[rows],
        lookup(projection.projector.baseline_figures.precision[rows], PEAK_INDEX),
    )
    replicas = size_replicas(sub, everywhere)
    lifts = replicas.fits & replicas.latency_ok
    # Slowest memory first, by the spec sheet (the calibrated figure depends on the phase).
    spec = catalog["mem_bandwidth_bytes_per_s"].to_numpy(dtype=float)
    order = np.argsort(spec, kind="stable")
    ordered = np.asarray(models, dtype=object)[order]
    for i, row in enumerate(lifts[:, order]):
        on = [str(m) for m in ordered[row][:MODELS_LISTED]]
        if on:
            found[i].append(("or " if found[i] else "") + "on " + ", ".join(on))
    out[rows] = ["; ".join(f) if f else "none found" for f in found]
    return out
