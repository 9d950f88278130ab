"""Date bands: every starvation month with the P10-P90 range its inputs' spread allows.

Two spreads feed a workload's headroom S/D, both as standard deviations of natural logs:

- supply: S is proportional to the efficiency of the ceiling that binds it (bandwidth when
  memory-bound, compute otherwise), so log S has the spread of that efficiency
  (``tasks.analysis.supply.efficiency``: a measured CV). Where that efficiency is a default
  fitted on published runs, the spread is the backtest's leave-one-source-out RMS log error
  of the workload's architecture class (dense, MoE, MLA-MoE; all rows' for a workload of no
  known preset): how far such a prediction lands on a source the fit never saw, not the
  fit's own residuals (those stand where no backtest ran). A pool of several models takes
  the spreads of each weighted by the supply each gives the workload over the horizon;
- demand: D(t) = D0·(1+g)^(t/12) with g uncertain by ``demand_growth_sigma`` (σ_g): to first
  order log D(t) has the spread σ_g·(t/12)/(1+g).

Independent, they add in quadrature: s(t)² = s_S² + (σ_g·t/(12·(1+g)))². Headroom P10 and
P90 are H(t)·exp(∓z·s(t)) with z = 1.2816, the 90th percentile of a standard normal. The
starvation month's P10 is the first month the pessimistic headroom is below 1 while
memory-bound, its P90 the first month the optimistic one is; the bound is held at its
central value. Since exp(−z·s) ≤ 1 ≤ exp(z·s), P10 ≤ P50 ≤ P90 always. A handful of dense
(workloads x months) operations: no sampling, no loop per workload.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

import numpy as np
import pandas as pd

from tasks.analysis.projection.projector import Outcome, Projection, Projector
from tasks.analysis.supply.efficiency import SPREAD_CLASSES
from tasks.analysis.workload.presets import PRESETS

Z90: Final = 1.2815515655446004


@dataclass(frozen=True)
class Band:
    """Per workload: the supply's log spread (workloads,); per workload and month: the total
    log spread and headroom P10/P90; the P10 and P90 starvation month indices (NEVER: none)."""

    supply_spread: np.ndarray
    spread: np.ndarray
    headroom_p10: np.ndarray
    headroom_p90: np.ndarray
    starve_p10_index: np.ndarray
    starve_p90_index: np.ndarray


def workload_classes(workloads: pd.DataFrame) -> np.ndarray:
    """Each workload's index in :data:`SPREAD_CLASSES`: its preset's architecture class, or
    the last ("all") where it names no preset this memwall knows."""
    unknown = len(SPREAD_CLASSES) - 1
    if "model_preset" not in workloads:
        return np.full(len(workloads), unknown)
    position = {c: i for i, c in enumerate(SPREAD_CLASSES)}
    table = {name: position[a.architecture_class] for name, a in PRESETS.items()}
    return np.array([table.get(str(p), unknown) for p in workloads["model_preset"]], dtype=int)


def supply_spread(projector: Projector, classes: np.ndarray | None = None) -> np.ndarray:
    """Each workload's log spread of supply: the binding ceiling's efficiency spread on each
    model its pool holds (its class's leave-one-source-out spread where that efficiency is a
    fitted default; ``classes`` from :func:`workload_classes`, "all" when not given),
    weighted by device-months times what one device supplies."""
    figures = projector.baseline_figures
    bandwidth_term, peak = projector.per_device_terms(figures)
    phase = projector.placement.phase_index
    ceilings = projector.ceilings
    if classes is None:
        classes = np.full(len(phase), len(SPREAD_CLASSES) - 1)
    by_class = ceilings.class_spread[phase, classes]
    binding = np.where(
        bandwidth_term < peak,
        ceilings.bandwidth_spread[phase],
        ceilings.flops_spread[phase],
    )
    binding = np.where(np.isnan(by_class), binding, by_class)
    device_months = projector.fleet.counts.sum(axis=2)[projector.placement.pool_index]
    weight = device_months * np.minimum(bandwidth_term, peak)
    total = weight.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = (weight * np.nan_to_num(binding)).sum(axis=1) / total
    return np.asarray(np.where(total > 0, spread, 0.0))


def band(projection: Projection, supply: np.ndarray | None = None) -> Band:
    """The P10-P90 band of every workload's headroom and starvation month; ``supply``
    overrides the supply spread (workloads,), for what-ifs and tests."""
    projector = projection.projector
    outcome: Outcome = projection.outcome
    workloads = projection.workloads
    s_supply = (
        supply_spread(projector, workload_classes(workloads))
        if supply is None
        else np.asarray(supply, dtype=float)
    )
    sigma_g = (
        workloads["demand_growth_sigma"].fillna(0.0).to_numpy(dtype=float)
        if "demand_growth_sigma" in workloads
        else np.zeros(len(workloads))
    )
    growth = workloads["demand_growth_per_year"].to_numpy(dtype=float)
    years = np.arange(len(projection.months)) / 12.0
    s_demand = (sigma_g / (1.0 + growth))[:, None] * years[None, :]
    spread = np.sqrt(s_supply[:, None] ** 2 + s_demand**2)
    low = outcome.headroom * np.exp(-Z90 * spread)
    high = outcome.headroom * np.exp(Z90 * spread)
    # The projection's own starvation rule, applied to the P10 and P90 headroom.
    return Band(
        supply_spread=s_supply,
        spread=spread,
        headroom_p10=low,
        headroom_p90=high,
        starve_p10_index=replace(outcome, headroom=low).starve_index,
        starve_p90_index=replace(outcome, headroom=high).starve_index,
    )
