"""The fitted step overhead (:mod:`tasks.analysis.supply.predict`) as the projection charges it.

A replica of n devices takes max(memory, compute)/n + o per step for ``units`` units, so each
device spends flops/attainable + n·o/units seconds on a unit: the overhead is paid by every
device of the replica, and spread over the step's units (a batch of tokens in decode, the
batch's prompt tokens in prefill). o is per layer in both (a prefill's forward pass launches
the same kernels per layer as a decode step).

Only rows that say what a step is carry it: their layers (the ``layers`` column, which the
workload model writes for a preset or an imported config.json; else the ``model_preset``'s), their
batch and, for prefill, their prompt length, with figures per token. A row typed in by hand
(FLOPs and bytes per unit alone) is charged none, which flatters it.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from tasks.analysis.workload.presets import PRESETS
from tasks.analysis.workload.workload_model import UNITS

# What a phase's overhead is counted per: a layer of a step, or a step.
OVERHEAD_PER: Final = {"decode": "layer", "prefill": "layer"}


def overheads_per_unit(workloads: pd.DataFrame, batch_factor: float = 1.0) -> np.ndarray:
    """Per workload: how many times a unit pays the phase's overhead figure (layers / batch
    in decode, layers / (batch · prompt) in prefill), 0 where the row cannot say; at
    ``batch_factor`` times each row's batch."""
    n = len(workloads)
    if n == 0:
        return np.zeros(n)
    layers = _column(workloads, "layers")
    if "model_preset" in workloads:
        of_preset = (
            workloads["model_preset"]
            .map(lambda name: PRESETS[name].layers if name in PRESETS else np.nan)
            .to_numpy(dtype=float)
        )
        layers = np.where(np.isnan(layers), of_preset, layers)
    batch = _column(workloads, "batch") * batch_factor
    context = _column(workloads, "context_tokens")
    phase = workloads["phase"].to_numpy(dtype=object)
    model_units = np.array([UNITS.get(p) for p in phase], dtype=object)
    units = workloads["unit"].to_numpy(dtype=object) if "unit" in workloads else model_units
    per = np.array(
        [
            OVERHEAD_PER.get(p, "") if u == m else ""
            for p, u, m in zip(phase, units, model_units, strict=True)
        ],
        dtype=object,
    )
    units_per_step = np.where(phase == "prefill", batch * context, batch)
    with np.errstate(invalid="ignore", divide="ignore"):
        times = np.where(per == "layer", layers, np.where(per == "step", 1.0, 0.0)) / units_per_step
    return np.asarray(np.nan_to_num(times, nan=0.0, posinf=0.0))


def _column(workloads: pd.DataFrame, name: str) -> np.ndarray:
    if name not in workloads:
        return np.full(len(workloads), np.nan)
    return np.asarray(workloads[name].to_numpy(dtype=float, na_value=np.nan))
