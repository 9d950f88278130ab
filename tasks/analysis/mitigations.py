"""What would fix a starving workload: each mitigation is the projection recomputed on a
variant of the workload (fewer bytes per unit, another precision's peak, another pool's
hardware), keeping its share of the pool, its demand and every other workload unchanged.

How a mitigation changes a workload's figures: rows made from a model preset are re-derived by
the workload model (:func:`modelled_figures`), exactly; other rows are scaled from the row alone
(:func:`precision_figures`, :func:`decode_split`), an approximation the report states.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hardware_profiles.errors import MemwallError
from tasks.analysis.models.presets import estimate_workload
from tasks.analysis.number_formats import BYTES_PER_ELEMENT
from tasks.analysis.projection import NEVER, Figures, Projection, lookup

LOWER_PRECISIONS = ("fp8", "int8", "int4")
BATCH_FACTORS = (2, 4)


@dataclass(frozen=True)
class Mitigation:
    key: str
    label: str


_MODEL_KEYS = (
    "model_preset",
    "phase",
    "batch",
    "context_tokens",
    "precision",
    "weight_precision",
    "kv_precision",
)


def modelled_figures(
    workloads: pd.DataFrame,
    *,
    weights: str | None = None,
    kv: str | None = None,
    batch_factor: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """(FLOPs, bytes) per unit re-derived by the workload model at other weight/KV precisions
    or batch, for rows made from a model preset; NaN for the rest. Rows that share a model,
    phase, batch, context and precisions are derived once, so 100,000 rows of a few models
    cost a few estimates."""
    flops = np.full(len(workloads), np.nan)
    nbytes = np.full(len(workloads), np.nan)
    if "model_preset" not in workloads:
        return flops, nbytes
    modelled = np.flatnonzero(workloads["model_preset"].notna().to_numpy())
    if modelled.size == 0:
        return flops, nbytes
    subset = workloads.iloc[modelled]
    keys = [k for k in _MODEL_KEYS if k in subset]
    for positions in subset.groupby(keys, dropna=False, sort=False).indices.values():
        row = {str(k): v for k, v in subset.iloc[positions[0]].items()}
        batch = None if batch_factor == 1 or pd.isna(row["batch"]) else int(row["batch"])
        try:
            estimate = estimate_workload(
                row, weights=weights, kv=kv, batch=None if batch is None else batch * batch_factor
            )
        except MemwallError:
            estimate = None  # a preset this memwall does not know: fall back to the row
        if estimate is not None:
            flops[modelled[positions]] = estimate.flops_per_unit
            nbytes[modelled[positions]] = estimate.bytes_per_unit
    return flops, nbytes


def precision_figures(
    figures: Figures, precision: str, workloads: pd.DataFrame
) -> tuple[Figures, np.ndarray]:
    """Weights and KV both stored at ``precision``; FLOPs run against that precision's peak.
    Only a narrower element than today's counts as a mitigation. Modelled rows are re-derived;
    for the rest bytes per unit scale with the element size (activations assumed alike)."""
    current = lookup(figures.precision, dict(BYTES_PER_ELEMENT)).astype(float)
    target = BYTES_PER_ELEMENT[precision]
    applicable = target < current
    flops, nbytes = modelled_figures(workloads, weights=precision, kv=precision)
    variant = Figures(
        np.where(np.isnan(flops), figures.flops_per_unit, flops),
        np.where(np.isnan(nbytes), figures.bytes_per_unit * target / current, nbytes),
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


def batch_figures(
    figures: Figures, workloads: pd.DataFrame, factor: int
) -> tuple[Figures, np.ndarray]:
    """Decode at ``factor`` times the batch, and where that applies. Modelled rows are
    re-derived; for the rest the weights' share of bytes per token is divided by the factor
    and the KV cache per token kept (rows that cannot be split do not apply)."""
    weights, kv = decode_split(workloads)
    approximate = kv + weights / factor
    flops, nbytes = modelled_figures(workloads, batch_factor=factor)
    decode = (workloads["phase"] == "decode").to_numpy()
    nbytes = np.where(decode & ~np.isnan(nbytes), nbytes, approximate)
    flops = np.where(decode & ~np.isnan(flops), flops, figures.flops_per_unit)
    applicable = ~np.isnan(nbytes)
    variant = Figures(flops, np.where(applicable, nbytes, 1.0), figures.precision)
    return variant, applicable


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
        variant, applicable = precision_figures(figures, arg, projector.workloads)
        outcome = projector.evaluate(variant)
    elif kind == "batch":
        variant, applicable = batch_figures(figures, projector.workloads, int(arg[1:]))
        outcome = projector.evaluate(variant)
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
