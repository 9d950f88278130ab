"""What-if: the same projection once per roadmap scenario, compared with a baseline.

A roadmap's ``scenario`` column names the plan each row belongs to; rows with no scenario are
shared by every plan (the installed base, say), so a scenario file only has to state what
differs. Scenarios are split by ``hardware_profiles.roadmaps.split_scenarios``: the baseline is
the shared rows alone (plus any rows named ``baseline``), "doing nothing more".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hardware_profiles.months import month_index
from hardware_profiles.roadmaps import baseline_name
from hardware_profiles.schema import Profiles
from tasks.analysis.projection.horizon import NEVER
from tasks.analysis.projection.projector import Projection, project_profiles
from tasks.analysis.ranking.ranking import Ranked, rank
from tasks.analysis.scenarios.scenario_figures import scenario_figures


def purchase_cost_usd(
    roadmap: pd.DataFrame, catalog: pd.DataFrame, months: list[dt.date]
) -> float | None:
    """What the purchases within the horizon cost: unit_cost_usd, else the catalog's list
    price; None when some purchase has neither."""
    when = np.array([month_index(months[0], d) for d in roadmap["effective_date"]])
    buys = roadmap[(roadmap["count_delta"] > 0).to_numpy() & (when >= 0) & (when < len(months))]
    if buys.empty:
        return 0.0
    price = buys["accelerator_id"].map(catalog.set_index("accelerator_id")["list_price_usd"])
    unit = buys["unit_cost_usd"].astype(float).fillna(price.astype(float))
    if unit.isna().any():
        return None
    return float((unit * buys["count_delta"]).sum())


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    profiles: Profiles
    projection: Projection
    ranked: Ranked
    cost_usd: float | None


def compare(
    scenarios: dict[str, Profiles],
    calibrated: pd.DataFrame,
    start: dt.date,
    months: int,
) -> tuple[pd.DataFrame, list[ScenarioResult]]:
    """Project every scenario; one comparison row per scenario against the baseline.

    Columns: scenario, starving (within the horizon), rescued and newly_starving (workload
    ids, against the baseline), months_gained (summed over workloads, a workload that no
    longer starves counting the rest of the horizon), cost_usd (purchases in the horizon),
    extra_cost_usd and cost_per_month_gained_usd (against the baseline; None where unknown),
    and what :func:`tasks.analysis.scenarios.scenario_figures.scenario_figures` adds: walls,
    token_capacity_per_s, added_tokens_per_s, usd_per_added_token_per_s, serving_power_watts,
    tokens_per_joule, months_gained_per_million_usd.
    """
    results = []
    for name, profiles in scenarios.items():
        projection = project_profiles(profiles, calibrated, start, months)
        results.append(
            ScenarioResult(
                name,
                profiles,
                projection,
                rank(projection, with_mitigations=False, catalog=profiles.catalog),
                purchase_cost_usd(profiles.roadmap, profiles.catalog, projection.months),
            )
        )
    base = next(r for r in results if r.name == baseline_name(list(scenarios)))
    ids = base.profiles.workloads["workload_id"].astype(str).to_numpy()
    base_starve = base.projection.outcome.starve_index
    rows = []
    for result in results:
        starve = result.projection.outcome.starve_index
        later = np.where(starve == NEVER, months, starve) - np.where(
            base_starve == NEVER, months, base_starve
        )
        extra = (
            None
            if result.cost_usd is None or base.cost_usd is None
            else result.cost_usd - base.cost_usd
        )
        gained = int(later.sum())
        rows.append(
            {
                "scenario": result.name,
                "starving": int((starve != NEVER).sum()),
                "rescued": list(ids[(base_starve != NEVER) & (starve == NEVER)]),
                "newly_starving": list(ids[(base_starve == NEVER) & (starve != NEVER)]),
                "months_gained": gained,
                "cost_usd": result.cost_usd,
                "extra_cost_usd": extra,
                "cost_per_month_gained_usd": extra / gained
                if extra is not None and gained > 0
                else None,
            }
        )
    comparison = pd.DataFrame(rows)
    figures = scenario_figures(results, base.name, base.profiles.catalog, comparison)
    return comparison.merge(figures, on="scenario", how="left"), results
