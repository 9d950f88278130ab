"""What a roadmap scenario buys, per dollar and per joule, and which walls remain.

At the horizon's last month (the fleet after every change in the horizon):

- token capacity = Σ over workloads counted in tokens of share × attainable FLOP/s / FLOPs per
  token: the tokens per second the plan serves for the workloads as they are shared today;
- added capacity = token capacity − the baseline's; $ per (token/s) added = extra cost /
  added capacity (where both are known and positive);
- serving power = Σ over those workloads of share × Σ over their pool's devices of TDP (devices
  taken at their TDP while serving, an upper bound); tokens per joule = token capacity /
  serving power; unknown where a device in those pools has no ``tdp_watts`` in the catalog;
- months gained per $1M = months gained (summed over workloads) / (extra cost / 1e6), where
  the scenario costs more than the baseline and that cost is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd

from tasks.analysis.projection.projector import Projection
from tasks.analysis.ranking.ranking import Ranked
from tasks.analysis.walls.walls import WALLS

MILLION_USD = 1e6


class Scenario(Protocol):
    """What :func:`scenario_figures` reads of a what-if result."""

    @property
    def name(self) -> str: ...
    @property
    def projection(self) -> Projection: ...
    @property
    def ranked(self) -> Ranked: ...


def token_capacity(projection: Projection) -> float:
    projector = projection.projector
    tokens = (projection.workloads["unit"] == "token").to_numpy()
    supply = (
        np.nan_to_num(projector.share)
        * projection.outcome.attainable_flops_per_s[:, -1]
        / projector.baseline_figures.flops_per_unit
    )
    return float(supply[tokens].sum())


def serving_power_watts(projection: Projection, catalog: pd.DataFrame) -> float | None:
    projector = projection.projector
    tokens = (projection.workloads["unit"] == "token").to_numpy()
    tdp = (
        catalog.set_index("accelerator_id")
        .reindex(projector.fleet.models)
        .get("tdp_watts", pd.Series(np.nan, index=projector.fleet.models))
        .to_numpy(dtype=float, na_value=np.nan)
    )
    counts = projector.fleet.counts[:, :, -1]  # (pools, models)
    pools = np.unique(projector.placement.pool_index[tokens])
    if np.isnan(tdp[(counts[pools] > 0).any(axis=0)]).any():
        return None
    pool_watts = counts @ np.nan_to_num(tdp)
    share = np.nan_to_num(projector.share)
    return float((share * pool_watts[projector.placement.pool_index])[tokens].sum())


def wall_counts(ranking: pd.DataFrame) -> str:
    """``bandwidth 2, latency 1``: workloads per wall within the horizon, ``none`` if none."""
    if "wall" not in ranking:
        return "unknown"
    counts = ranking["wall"].value_counts()
    return ", ".join(f"{w} {int(counts[w])}" for w in WALLS if counts.get(w, 0) > 0) or "none"


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or numerator <= 0 or denominator <= 0:
        return None
    return numerator / denominator


def scenario_figures(
    scenarios: Sequence[Scenario],
    baseline: str,
    catalog: pd.DataFrame,
    comparison: pd.DataFrame,
) -> pd.DataFrame:
    """Per scenario: walls, token_capacity_per_s, added_tokens_per_s, usd_per_added_token_per_s,
    serving_power_watts, tokens_per_joule, months_gained_per_million_usd (None where unknown).
    ``comparison`` carries each scenario's months_gained and extra_cost_usd."""
    capacity = {s.name: token_capacity(s.projection) for s in scenarios}
    costs = comparison.set_index("scenario")["extra_cost_usd"].astype(float)
    months = comparison.set_index("scenario")["months_gained"].astype(float)
    rows = []
    for s in scenarios:
        cost = float(costs[s.name])
        extra = None if np.isnan(cost) else cost
        added = capacity[s.name] - capacity[baseline]
        power = serving_power_watts(s.projection, catalog)
        gained = float(months[s.name])
        rows.append(
            {
                "scenario": s.name,
                "walls": wall_counts(s.ranked.ranking),
                "token_capacity_per_s": capacity[s.name],
                "added_tokens_per_s": added,
                "usd_per_added_token_per_s": _ratio(extra, added),
                "serving_power_watts": power,
                "tokens_per_joule": _ratio(capacity[s.name], power),
                "months_gained_per_million_usd": None
                if extra is None or extra <= 0
                else gained / (extra / MILLION_USD),
            }
        )
    return pd.DataFrame(rows)
