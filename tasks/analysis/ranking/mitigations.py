"""What would fix a starving workload: each mitigation is the projection recomputed on a
variant of the workload (fewer bytes per unit, another precision's peak, another pool's
hardware), keeping its share of the pool, its demand and every other workload unchanged.

How a mitigation changes a workload's figures: rows made from a model preset are re-derived by
the workload model, exactly; other rows are scaled from the row alone
(:mod:`tasks.analysis.workload.variants`), an approximation the report states. A mitigation
that does not apply says why (``reason``), e.g. "nvidia-a100-80gb-sxm: no fp8 units".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hardware_profiles.schema import PEAK_PRECISIONS
from tasks.analysis.projection.horizon import NEVER
from tasks.analysis.projection.projector import Projection, Projector
from tasks.analysis.workload.variants import PRECISION_CHANGES, batch_figures, precision_variant

BATCH_FACTORS = (2, 4)


@dataclass(frozen=True)
class Mitigation:
    key: str
    label: str


def catalogue(projection: Projection) -> list[Mitigation]:
    """Every mitigation tried, in the order that breaks ties (the simplest change first)."""
    pools = projection.fleet.pools
    return [
        *(Mitigation(c.key, c.label) for c in PRECISION_CHANGES),
        *(Mitigation(f"batch:x{k}", f"batch x{k}") for k in BATCH_FACTORS),
        *(Mitigation(f"pool:{p}", f"on {p} hardware") for p in pools),
    ]


def missing_units(projector: Projector, precision: str, counts: np.ndarray) -> np.ndarray:
    """Per workload: "" where every model its pool holds (``counts``: pools, models, months)
    has ``precision`` units, else which lack them and which have them."""
    # (phases, models): a model has the units whatever the phase, so any phase says.
    has = ~np.isnan(projector.ceilings.flops[:, :, PEAK_PRECISIONS.index(precision)]).all(axis=0)
    reasons = []
    for pool in range(counts.shape[0]):
        held = counts[pool].max(axis=1) > 0
        lacking = [
            m for m, h, u in zip(projector.fleet.models, held, has, strict=True) if h and not u
        ]
        having = [m for m, h, u in zip(projector.fleet.models, held, has, strict=True) if h and u]
        reason = f"{', '.join(lacking)}: no {precision} units" if lacking else ""
        if lacking and having:
            reason += f" ({', '.join(having)} {'has' if len(having) == 1 else 'have'} them)"
        reasons.append(reason)
    return np.asarray(np.asarray(reasons, dtype=object)[projector.placement.pool_index])


def _starve_of(
    projection: Projection, mitigation: Mitigation
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starvation month index under the mitigation, whether it applies, why not) per
    workload."""
    projector = projection.projector
    figures = projector.baseline_figures
    kind, _, arg = mitigation.key.partition(":")
    n = len(figures.flops_per_unit)
    reason = np.full(n, "", dtype=object)
    changes = {c.key: c for c in PRECISION_CHANGES}
    counts = projector.fleet.counts
    if mitigation.key in changes:
        variant, applicable, reason = precision_variant(
            figures, projection.served_workloads, changes[mitigation.key]
        )
    elif kind == "batch":
        variant, applicable = batch_figures(figures, projection.served_workloads, int(arg[1:]))
        reason[~applicable] = "decode rows only, whose weights and KV cache can be told apart"
    else:
        target = projector.fleet.pools.index(arg)
        pool_counts = projector.fleet.on_pool_mix(target)
        variant, applicable = figures, projector.placement.pool_index != target
        reason[~applicable] = "already there"
        if pool_counts is None:
            reason[applicable] = f"pool {arg!r} is empty in some month of the horizon"
            return np.full(n, NEVER), np.zeros(n, dtype=bool), reason
        counts = pool_counts
    starve, supported = projector.starve_index(
        variant, None if counts is projector.fleet.counts else counts
    )
    unsupported = applicable & ~supported
    precision = variant.precision.astype(str)
    for p in np.unique(precision[unsupported]):
        rows = unsupported & (precision == p)
        reason[rows] = missing_units(projector, p, counts)[rows]
    applicable = applicable & supported
    return starve, applicable, np.where(applicable, "", reason)


def months_gained(baseline: np.ndarray, mitigated: np.ndarray, months: int) -> np.ndarray:
    """Months a mitigation moves starvation later; a workload that no longer starves counts
    the rest of the horizon (a lower bound). Zero for workloads that do not starve."""
    base = np.where(baseline == NEVER, months, baseline)
    after = np.where(mitigated == NEVER, months, mitigated)
    return np.asarray(after - base)


def mitigate(projection: Projection) -> pd.DataFrame:
    """One row per workload and mitigation: workload_id, mitigation, label, applicable,
    reason (why not; "" where it applies), starve_index (NEVER where it no longer starves),
    months_gained (NaN where inapplicable). Mitigation by mitigation, each block in the
    projection's workload order; built column by column (11 mitigations of 100,000 workloads
    are 1.1 million rows), the labels as categoricals."""
    baseline = projection.outcome.starve_index
    n_months = len(projection.months)
    ids = projection.workloads["workload_id"].to_numpy()
    tried = catalogue(projection)
    starves, applies, reasons, gains = [], [], [], []
    for mitigation in tried:
        starve, applicable, reason = _starve_of(projection, mitigation)
        gained = months_gained(baseline, starve, n_months).astype(float)
        starves.append(np.where(applicable, starve, NEVER))
        applies.append(applicable)
        reasons.append(reason)
        gains.append(np.where(applicable, gained, np.nan))
    n = len(ids)
    which = np.repeat(np.arange(len(tried)), n)
    return pd.DataFrame(
        {
            "workload_id": np.tile(ids, len(tried)),
            "mitigation": pd.Categorical.from_codes(which, pd.Index([m.key for m in tried])),
            "label": pd.Categorical.from_codes(which, pd.Index([m.label for m in tried])),
            "applicable": np.concatenate(applies) if tried else np.zeros(0, dtype=bool),
            "reason": np.concatenate(reasons) if tried else np.zeros(0, dtype=object),
            "starve_index": np.concatenate(starves) if tried else np.zeros(0, dtype=np.int64),
            "months_gained": np.concatenate(gains) if tried else np.zeros(0),
        }
    )


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
