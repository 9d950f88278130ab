"""What-if: the same projection once per roadmap scenario, compared with a baseline.

A roadmap's ``scenario`` column names the plan each row belongs to; rows with no scenario are
shared by every plan (the installed base, say), so a scenario file only has to state what
differs. Scenarios are split by ``hardware_profiles.roadmaps.split_scenarios``: the baseline is
the shared rows alone (plus any rows named ``baseline``), "doing nothing more".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hardware_profiles import examples
from hardware_profiles.errors import ProfileError
from hardware_profiles.months import month_index
from hardware_profiles.roadmaps import BASELINE, split_scenarios
from tasks.analysis.projection import NEVER, Projection, project_profiles
from tasks.analysis.ranking import Ranked, rank
from tasks.analysis.scenario_figures import scenario_figures
from tasks.profiles import Profiles, check_consistent, read_profiles


def baseline_name(names: list[str]) -> str:
    """The plan the others are compared with: the shared rows alone (``baseline``), or the
    first scenario when every row belongs to a named one."""
    return BASELINE if BASELINE in names else names[0]


def load_scenarios(
    workloads: str | Path | None,
    roadmap: str | Path | None,
    catalog: str | Path | None,
) -> dict[str, Profiles]:
    """Each scenario's profiles, checked on their own: a retirement in one plan must not be
    charged against a purchase in another."""
    whole = read_profiles(workloads, roadmap, catalog)
    if roadmap is None:
        # The built-in what-if plans: the example roadmap as the baseline, plus two purchases.
        whole = dataclasses.replace(whole, roadmap=examples.example_scenarios())
    split = split_scenarios(whole.roadmap)
    result = {}
    for name, rows in split.items():
        source = whole.roadmap_source
        profiles = dataclasses.replace(
            whole,
            roadmap=rows,
            roadmap_source=source if len(split) == 1 else f"{source} (scenario {name!r})",
        )
        check_consistent(profiles)
        result[name] = profiles
    return result


def pick_scenario(scenarios: dict[str, Profiles], name: str | None) -> tuple[str, Profiles]:
    """The scenario ``name``, or the baseline when no name is given."""
    names = list(scenarios)
    chosen = baseline_name(names) if name is None else name
    if chosen not in scenarios:
        source = next(iter(scenarios.values())).roadmap_source
        raise ProfileError(
            source,
            f"has no scenario {chosen!r}; its scenarios are {', '.join(names)}",
            column="scenario",
        )
    return chosen, scenarios[chosen]


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
    and what :func:`tasks.analysis.scenario_figures.scenario_figures` adds: walls,
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
