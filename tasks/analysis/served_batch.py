"""The batch a workload is served at: its own, unless its latency target caps it lower.

A replica's throughput is set by the largest batch that fits it and meets the workload's SLO
(``max_batch``, :mod:`tasks.analysis.replicas`). Where a decode or prefill workload has a target
(``tpot_slo_s`` / ``ttft_slo_s``) and 1 <= max_batch < batch, the projection evaluates its supply
at max_batch: the weights are read once per step for fewer sequences, so each unit costs more
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

import numpy as np
import pandas as pd

from tasks.analysis.precision_changes import decode_split, modelled_figures
from tasks.analysis.projection import Projector
from tasks.analysis.replicas import pool_hardware, size_replicas, step_model
from tasks.analysis.walls import reported_replica


def slo_batch(projector: Projector, catalog: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per workload: the batch its SLO caps it to, NaN where it is served at its own (no
    target, no cap, a latency wall, or never served); and the devices of its replica (NaN
    where none forms), which pay each step's overhead. The replica is the one the ranking
    reports (:func:`tasks.analysis.walls.reported_replica`)."""
    model = step_model(projector.workloads)
    replicas = size_replicas(model, pool_hardware(projector, catalog))
    devices, max_batch, _ = reported_replica(projector, replicas)
    inference = projector.workloads["phase"].isin(["decode", "prefill"]).to_numpy()
    with np.errstate(invalid="ignore"):
        capped = inference & ~np.isnan(model.slo_s) & (max_batch >= 1) & (max_batch < model.batch)
    return np.where(capped, max_batch, np.nan), devices


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
    memory = model.memory_fixed_bytes + batch * model.memory_per_sequence_bytes
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
