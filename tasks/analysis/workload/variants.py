"""Lower-precision mitigations: storage precision is not compute precision.

A workload has three precisions: its weights' storage, its KV cache's, and its compute (the
row's ``precision``, the one its matmuls run at). Each mitigation changes some of them:

- weight-only int8 / int4: the weights shrink, the matmuls still run at the compute precision
  (dequantized on the fly), so it runs on any hardware. Inference only: training updates its
  weights.
- fp8 KV cache: the cache shrinks (decode reads it every step); inference only.
- fp8 compute: weights, KV cache and activations at fp8, FLOPs at the fp8 peak; only where
  every device the pool holds has fp8 units.
- fp4 compute: NVFP4 weights and activations with an fp8 KV cache (what serving engines run
  with NVFP4 checkpoints), FLOPs at the fp4 peak; only where every device has fp4 units.

Each applies only where it narrows what the workload stores or computes today, and says why
where it does not ("nvidia-a100-80gb-sxm: no fp8 units").
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from hardware_profiles.errors import MemwallError
from tasks.analysis.workload.figures import Figures, expert_shares
from tasks.analysis.workload.number_formats import BYTES_PER_ELEMENT
from tasks.analysis.workload.presets import estimate_workload

INFERENCE = ("decode", "prefill")


@dataclass(frozen=True)
class PrecisionChange:
    """A mitigation that stores or computes at lower precision; None keeps today's."""

    key: str
    label: str
    weights: str | None = None
    kv: str | None = None
    compute: str | None = None


PRECISION_CHANGES = (
    PrecisionChange("weights:int8", "int8 weights (weight-only)", weights="int8"),
    PrecisionChange("weights:int4", "int4 weights (weight-only)", weights="int4"),
    PrecisionChange("kv:fp8", "fp8 KV cache", kv="fp8"),
    PrecisionChange("compute:fp8", "fp8 compute", weights="fp8", kv="fp8", compute="fp8"),
    PrecisionChange(
        "compute:fp4", "fp4 compute (NVFP4, fp8 KV)", weights="fp4", kv="fp8", compute="fp4"
    ),
)


def _width(precisions: pd.Series) -> np.ndarray:
    """Bytes per element of each row's precision (NaN where unknown), looked up once per
    distinct precision: a few, whatever the number of rows."""
    codes, names = pd.factorize(precisions, use_na_sentinel=False)
    widths = np.array([BYTES_PER_ELEMENT.get(str(name), np.nan) for name in names], dtype=float)
    return np.asarray(widths[codes])


def today(workloads: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(weights, KV, compute) precision of every row; a row without the storage columns
    stores at its compute precision (the assumption of rows written before they existed)."""
    compute = workloads["precision"].astype(str)

    def column(name: str) -> pd.Series:
        if name not in workloads:
            return compute
        return workloads[name].astype(str).where(workloads[name].notna(), compute)

    return column("weight_precision"), column("kv_precision"), compute


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
    width = _width(today(workloads)[0])
    weights = width * workloads["flops_per_unit"].to_numpy(dtype=float) / 2 / batch
    kv = workloads["bytes_per_unit"].to_numpy(dtype=float) - weights
    splittable = (phase == "decode") & ~np.isnan(batch) & (kv > 0)
    return np.where(splittable, weights, np.nan), np.where(splittable, kv, np.nan)


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
    compute: str | None = None,
    batch_factor: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """(FLOPs, bytes) per unit re-derived by the workload model at other precisions or batch,
    for rows made from a model preset; NaN for the rest. Rows that share a model, phase,
    batch, context and precisions are derived once, so 100,000 rows of a few models cost a
    few estimates."""
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
            derived = estimate_workload(
                row,
                weights=weights,
                kv=kv,
                compute=compute,
                batch=None if batch is None else batch * batch_factor,
            )
        except MemwallError:
            derived = None  # a preset this memwall does not know: fall back to the row
        if derived is not None:
            flops[modelled[positions]] = derived.flops_per_unit
            nbytes[modelled[positions]] = derived.bytes_per_unit
    return flops, nbytes


def _modelled(
    workloads: pd.DataFrame, change: PrecisionChange, weights: pd.Series, kv: pd.Series
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`modelled_figures` under ``change``, never widening what a row already stores
    narrower (int4 weights stay int4 under fp8 compute)."""
    flops = np.full(len(workloads), np.nan)
    nbytes = np.full(len(workloads), np.nan)

    def narrows(now: pd.Series, new: str | None) -> np.ndarray:
        if new is None:
            return np.zeros(len(now), dtype=bool)
        return np.asarray(BYTES_PER_ELEMENT[new] < _width(now))

    new_w, new_kv = narrows(weights, change.weights), narrows(kv, change.kv)
    for w in (True, False):
        for k in (True, False):
            rows = np.flatnonzero((new_w == w) & (new_kv == k))
            if rows.size:
                f, b = modelled_figures(
                    workloads.iloc[rows],
                    weights=change.weights if w else None,
                    kv=change.kv if k else None,
                    compute=change.compute,
                )
                flops[rows], nbytes[rows] = f, b
    return flops, nbytes


def precision_variant(
    figures: Figures, workloads: pd.DataFrame, change: PrecisionChange
) -> tuple[Figures, np.ndarray, np.ndarray]:
    """The workloads with ``change`` applied, whether it applies to each, and why not (""
    where it does). Hardware support is the projection's to judge (:func:`missing_units`).

    Rows made from a model preset are re-derived exactly. For the rest: a storage-only change
    scales the weights' or the KV cache's share of a decode row (:func:`decode_split`) and does
    not apply where the row cannot be split; a compute change scales all bytes by the ratio of
    element sizes, as if weights, KV cache and activations shrank alike (an approximation).
    """
    weights, kv, compute = today(workloads)
    phase = workloads["phase"].to_numpy(dtype=object)
    n = len(workloads)
    narrower = np.zeros(n, dtype=bool)
    reason = np.full(n, "", dtype=object)
    if change.compute is not None:
        narrower = BYTES_PER_ELEMENT[change.compute] < _width(compute)
        reason[~narrower] = f"computes at {change.compute} or narrower already"
    else:
        for now, new in ((weights, change.weights), (kv, change.kv)):
            if new is not None:
                narrower |= BYTES_PER_ELEMENT[new] < _width(now)
        what = "weights" if change.weights is not None else "KV cache"
        reason[~narrower] = f"{what} already {change.weights or change.kv} or narrower"
        training = ~np.isin(phase, INFERENCE)
        reason[training] = [f"{p}: an inference change" for p in phase[training]]
        narrower &= ~training

    flops, nbytes = _modelled(workloads, change, weights, kv)
    if change.compute is not None:
        ratio = BYTES_PER_ELEMENT[change.compute] / _width(compute)
        approximate = figures.bytes_per_unit * ratio
    else:
        w, k = decode_split(workloads)
        if change.weights is not None:
            approximate = k + w * BYTES_PER_ELEMENT[change.weights] / _width(weights)
        else:
            assert change.kv is not None
            approximate = w + k * BYTES_PER_ELEMENT[change.kv] / _width(kv)
        unsplit = np.isnan(nbytes) & np.isnan(approximate) & narrower
        reason[unsplit] = "weights and KV cache cannot be told apart from this row"
        narrower &= ~unsplit
    nbytes = np.where(np.isnan(nbytes), approximate, nbytes)
    variant = figures.with_units(
        np.where(np.isnan(flops), figures.flops_per_unit, flops),
        np.where(narrower, nbytes, figures.bytes_per_unit),
        figures.precision
        if change.compute is None
        else np.where(narrower, change.compute, figures.precision).astype(object),
        figures.overheads_per_unit,
    )
    return variant, narrower, reason


def batch_figures(
    figures: Figures, workloads: pd.DataFrame, factor: int
) -> tuple[Figures, np.ndarray]:
    """Decode at ``factor`` times the batch, and where that applies. Modelled rows are
    re-derived, their routed experts' shares of the step included; for the rest the weights'
    share of bytes per token is divided by the factor and the KV cache per token kept (rows
    that cannot be split do not apply)."""
    weights, kv = decode_split(workloads)
    approximate = kv + weights / factor
    flops, nbytes = modelled_figures(workloads, batch_factor=factor)
    decode = (workloads["phase"] == "decode").to_numpy()
    nbytes = np.where(decode & ~np.isnan(nbytes), nbytes, approximate)
    flops = np.where(decode & ~np.isnan(flops), flops, figures.flops_per_unit)
    applicable = ~np.isnan(nbytes)
    overheads = np.where(
        applicable, figures.overheads_per_unit / factor, figures.overheads_per_unit
    )
    variant = figures.with_units(
        flops, np.where(applicable, nbytes, 1.0), figures.precision, overheads
    )
    if figures.expert_bytes_share is None or figures.expert_flops_share is None:
        return variant, applicable
    # A larger batch touches more of each layer's experts, E·(1 − (1 − k/E)^B): the routed
    # experts' share of the step is the mitigation batch's, not the baseline's.
    scaled = workloads.assign(batch=workloads["batch"] * np.where(decode, factor, 1))
    bytes_share, flops_share, _ = expert_shares(scaled)
    moved = applicable & decode
    return replace(
        variant,
        expert_bytes_share=np.where(moved, bytes_share, figures.expert_bytes_share),
        expert_flops_share=np.where(moved, flops_share, figures.expert_flops_share),
    ), applicable
