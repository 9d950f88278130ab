"""The fitted step overhead (``tasks.analysis.predict``) as the projection charges it.

A replica of n devices takes max(memory, compute)/n + o per step for ``units`` units, so each
device spends flops/attainable + n·o/units seconds on a unit: the overhead is paid by every
device of the replica, and spread over the step's units (a batch of tokens in decode, the
batch's prompt tokens in prefill). o is per layer in decode, per step in prefill.

Only rows the workload model can take apart carry it: a row made from a model preset knows its
layers, batch and context. A row typed in by hand (FLOPs and bytes per unit alone) is charged
none, which flatters it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.analysis.models.presets import PRESETS
from tasks.analysis.predict import OVERHEAD_PER


def overheads_per_unit(workloads: pd.DataFrame, batch_factor: float = 1.0) -> np.ndarray:
    """Per workload: how many times a unit pays the phase's overhead figure (layers / batch
    in decode, 1 / (batch · prompt) in prefill), 0 where the row cannot say; at
    ``batch_factor`` times each row's batch."""
    n = len(workloads)
    if "model_preset" not in workloads or n == 0:
        return np.zeros(n)
    layers = (
        workloads["model_preset"]
        .map(lambda name: PRESETS[name].layers if name in PRESETS else np.nan)
        .to_numpy(dtype=float)
    )
    batch = _column(workloads, "batch") * batch_factor
    context = _column(workloads, "context_tokens")
    phase = workloads["phase"].to_numpy(dtype=object)
    per = np.array([OVERHEAD_PER.get(p, "") for p in phase], dtype=object)
    with np.errstate(invalid="ignore", divide="ignore"):
        times = np.where(
            per == "layer", layers / batch, np.where(per == "step", 1 / (batch * context), 0.0)
        )
    return np.asarray(np.nan_to_num(times, nan=0.0, posinf=0.0))


def _column(workloads: pd.DataFrame, name: str) -> np.ndarray:
    if name not in workloads:
        return np.full(len(workloads), np.nan)
    return np.asarray(workloads[name].to_numpy(dtype=float, na_value=np.nan))
