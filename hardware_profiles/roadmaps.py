"""Roadmap scenarios and the fleet each pool holds month by month.

A roadmap's ``scenario`` column tells what-if plans apart: a row with no scenario belongs to
every scenario (the shared base plan), a row with one belongs to that scenario only. A roadmap
with no scenario names is the single scenario ``baseline``; one with names also yields
``baseline``, the shared rows alone, so every what-if is compared against doing nothing more.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import pandas as pd

from hardware_profiles.errors import ProfileError
from hardware_profiles.months import add_months, month_start

BASELINE: Final = "baseline"


def scenario_names(roadmap: pd.DataFrame) -> list[str]:
    named = roadmap["scenario"].dropna().astype(str) if "scenario" in roadmap else pd.Series()
    return [BASELINE, *sorted(set(named) - {BASELINE})]


def split_scenarios(roadmap: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Scenario name -> the roadmap rows that make it up (shared rows included)."""
    if "scenario" not in roadmap:
        return {BASELINE: roadmap.reset_index(drop=True)}
    shared = roadmap["scenario"].isna()
    named = set(roadmap["scenario"].dropna().astype(str))
    return {
        name: roadmap[shared | (roadmap["scenario"] == name)].reset_index(drop=True)
        for name in scenario_names(roadmap)
        # With no shared rows, "doing nothing more" is no plan at all: no baseline then.
        if name != BASELINE or shared.any() or BASELINE in named
    }


def pick_scenario(roadmap: pd.DataFrame, scenario: str | None, source: str) -> pd.DataFrame:
    scenarios = split_scenarios(roadmap)
    name = scenario or BASELINE
    if name not in scenarios:
        raise ProfileError(
            source,
            f"has no scenario {name!r}; its scenarios are {', '.join(scenarios)}",
            column="scenario",
        )
    return scenarios[name]


def fleet_by_month(roadmap: pd.DataFrame, start: dt.date, months: int) -> pd.DataFrame:
    """One row per (pool, month, accelerator_id) with the count held, what changed that month
    and what was spent (positive deltas times unit cost).

    Columns: pool, month, accelerator_id, count, delta, spend_usd.
    """
    effective = roadmap["effective_date"].map(month_start)
    rows = []
    for offset in range(months):
        month = add_months(month_start(start), offset)
        upto = roadmap[effective <= month]
        now = roadmap[effective == month]
        for (pool, accelerator), group in upto.groupby(["pool", "accelerator_id"]):
            changed = now[(now["pool"] == pool) & (now["accelerator_id"] == accelerator)]
            bought = changed[changed["count_delta"] > 0]
            count = int(group["count_delta"].sum())
            delta = int(changed["count_delta"].sum())
            if count == 0 and delta == 0:
                continue
            rows.append(
                {
                    "pool": pool,
                    "month": month,
                    "accelerator_id": accelerator,
                    "count": count,
                    "delta": delta,
                    "spend_usd": float(
                        (bought["count_delta"] * bought["unit_cost_usd"].fillna(0.0)).sum()
                    ),
                }
            )
    return pd.DataFrame(
        rows, columns=["pool", "month", "accelerator_id", "count", "delta", "spend_usd"]
    )


def baseline_name(names: list[str]) -> str:
    """The plan the others are compared with: the shared rows alone (``baseline``), or the
    first scenario when every row belongs to a named one."""
    return BASELINE if BASELINE in names else names[0]
