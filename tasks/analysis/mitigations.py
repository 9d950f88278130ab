"""What would fix a starving workload: each mitigation is the projection recomputed on a
variant of the workload (fewer bytes per unit, another precision's peak, another pool's
hardware), keeping its share of the pool, its demand and every other workload unchanged.

How a mitigation changes a workload's figures is decided from the workload row alone, in
:func:`precision_figures` and :func:`decode_split`; a workload model (architecture -> FLOPs
and bytes) can replace those two functions without touching the projection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tasks.analysis.projection import NEVER, Figures, Projection, lookup

# Bytes per weight / KV element at each precision.
BYTES_PER_ELEMENT = {
    "fp32": 4.0,
    "tf32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
}
LOWER_PRECISIONS = ("fp8", "int8", "int4")
BATCH_FACTORS = (2, 4)


@dataclass(frozen=True)
class Mitigation:
    key: str
    label: str


def precision_figures(figures: Figures, precision: str) -> tuple[Figures, np.ndarray]:
    """Weights and KV both stored at ``precision``: bytes per unit scale with the element
    size (activations are assumed to scale alike); FLOPs are unchanged and run against that
    precision's peak. Only a narrower element than today's counts as a mitigation."""
    current = lookup(figures.precision, BYTES_PER_ELEMENT).astype(float)
    target = BYTES_PER_ELEMENT[precision]
    applicable = target < current
    variant = Figures(
        figures.flops_per_unit,
        figures.bytes_per_unit * target / current,
        np.full(len(current), precision, dtype=object),
    )
    return variant, applicable


def decode_split(workloads: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Bytes per token of each decode workload split into (weights, KV cache); NaN where the
    row cannot be split. The one place that guesses the split from the row alone.

    Decode reads the weights once per step, shared by the B tokens of the batch, and each
    token's own KV cache: bytes/token = W/B + KV. Without the model, W is estimated from the
    FLOPs (two FLOPs per weight per token: W ≈ b_w·FLOPs/2, which counts attention FLOPs as
    weights and so overstates W at long contexts); where that leaves no KV (W/B ≥ bytes/token)
    the row cannot be split.
    """
    phase = workloads["phase"].to_numpy(dtype=object)
    batch = workloads["batch"].to_numpy(dtype=float, na_value=np.nan)
    width = workloads["precision"].map(BYTES_PER_ELEMENT).to_numpy(dtype=float)
    weights = width * workloads["flops_per_unit"].to_numpy(dtype=float) / 2 / batch
    kv = workloads["bytes_per_unit"].to_numpy(dtype=float) - weights
    splittable = (phase == "decode") & ~np.isnan(batch) & (kv > 0)
    return np.where(splittable, weights, np.nan), np.where(splittable, kv, np.nan)


def batch_bytes_per_unit(workloads: pd.DataFrame, factor: int) -> np.ndarray:
    """Bytes per token at ``factor`` times the batch: the weights' share divided by the
    factor, the KV cache per token unchanged; NaN where the row cannot be split."""
    weights, kv = decode_split(workloads)
    return np.asarray(kv + weights / factor)


def catalogue(projection: Projection) -> list[Mitigation]:
    """Every mitigation tried, in the order that breaks ties (the simplest change first)."""
    pools = projection.projector.fleet.pools
    return [
        *(Mitigation(f"precision:{p}", f"{p} weights+KV") for p in LOWER_PRECISIONS),
        *(Mitigation(f"batch:x{k}", f"batch x{k}") for k in BATCH_FACTORS),
        *(Mitigation(f"pool:{p}", f"on {p} hardware") for p in pools),
    ]


def _starve_of(projection: Projection, mitigation: Mitigation) -> tuple[np.ndarray, np.ndarray]:
    """(starvation month index under the mitigation, whether it applies) per workload."""
    projector = projection.projector
    figures = projector.baseline_figures
    kind, _, arg = mitigation.key.partition(":")
    if kind == "precision":
        variant, applicable = precision_figures(figures, arg)
        outcome = projector.evaluate(variant)
    elif kind == "batch":
        nbytes = batch_bytes_per_unit(projector.workloads, int(arg[1:]))
        applicable = ~np.isnan(nbytes)
        outcome = projector.evaluate(
            Figures(figures.flops_per_unit, np.where(applicable, nbytes, 1.0), figures.precision)
        )
    else:
        target = projector.fleet.pools.index(arg)
        counts = projector.counts_on_pool_hardware(target)
        applicable = projector.pool_index != target
        if counts is None:
            return np.full(len(applicable), NEVER), np.zeros(len(applicable), dtype=bool)
        outcome = projector.evaluate(figures, counts)
    return outcome.starve_index, applicable & outcome.supported


def months_gained(baseline: np.ndarray, mitigated: np.ndarray, months: int) -> np.ndarray:
    """Months a mitigation moves starvation later; a workload that no longer starves counts
    the rest of the horizon (a lower bound). Zero for workloads that do not starve."""
    base = np.where(baseline == NEVER, months, baseline)
    after = np.where(mitigated == NEVER, months, mitigated)
    return np.asarray(after - base)


def mitigate(projection: Projection) -> pd.DataFrame:
    """One row per workload and mitigation: workload_id, mitigation, label, applicable,
    starve_index (NEVER where it no longer starves), months_gained (NaN where inapplicable)."""
    baseline = projection.outcome.starve_index
    n_months = len(projection.months)
    ids = projection.projector.workloads["workload_id"].to_numpy()
    frames = []
    for mitigation in catalogue(projection):
        starve, applicable = _starve_of(projection, mitigation)
        gained = months_gained(baseline, starve, n_months).astype(float)
        frames.append(
            pd.DataFrame(
                {
                    "workload_id": ids,
                    "mitigation": mitigation.key,
                    "label": mitigation.label,
                    "applicable": applicable,
                    "starve_index": np.where(applicable, starve, NEVER),
                    "months_gained": np.where(applicable, gained, np.nan),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def best_mitigation(mitigations: pd.DataFrame, n_workloads: int) -> tuple[np.ndarray, np.ndarray]:
    """Per workload (in table order): the label of the mitigation that buys the most months
    (None where none buys any) and the months it buys."""
    gained = mitigations["months_gained"].to_numpy(dtype=float).reshape(-1, n_workloads)
    labels = mitigations["label"].to_numpy(dtype=object).reshape(-1, n_workloads)
    filled = np.where(np.isnan(gained), -np.inf, gained)
    best = filled.argmax(axis=0)
    columns = np.arange(n_workloads)
    months = filled[best, columns]
    label = np.where(months > 0, labels[best, columns], None)
    return np.asarray(label), np.asarray(np.where(months > 0, months, 0.0))
