"""Date bands on scenario S of test_projection (computed by hand there): workload a has
headroom 1.4 / 1.5^(t/6) and is memory-bound, starving at t = 5 (2027-06).

With a supply spread s = 0.1 (z = 1.2816 for P10/P90):
- P10 headroom 1.4·exp(−0.12816) = 1.4·0.87972 = 1.23161, below 1 once
  t > 6·ln(1.23161)/ln(1.5) = 6·0.20833/0.40547 = 3.08 -> t = 4, 2027-05;
- P90 headroom 1.4·exp(0.12816) = 1.59144, below 1 once t > 6·0.46464/0.40547 = 6.88 -> t = 7,
  2027-08.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import WORKLOADS
from tasks.analysis.projection.horizon import NEVER
from tasks.analysis.projection.projector import project
from tasks.analysis.projection.uncertainty import band, supply_spread, workload_classes
from tasks.analysis.ranking.ranking import rank, ranking_rows
from tasks.analysis.supply.calibration import calibrate
from tasks.analysis.supply.efficiency import Efficiency, FittedDefaults
from tests.analysis.projection.test_projector import BASE, START, _catalog, _roadmap, _scenario_s


def _projection(workloads: pd.DataFrame | None = None, fitted: FittedDefaults | None = None):  # type: ignore[no-untyped-def]
    calibrated = calibrate(_catalog(), fitted=fitted or FittedDefaults())
    return project(
        _scenario_s() if workloads is None else workloads, _roadmap(BASE), calibrated, START, 12
    )


def test_hand_computed_band_of_a_memory_bound_workload() -> None:
    ranked = rank(_projection(), supply_spread=np.full(3, 0.1)).ranking.set_index("workload_id")
    assert ranked.loc["a", "starve_month"] == dt.date(2027, 6, 1)
    assert ranked.loc["a", "starve_month_p10"] == dt.date(2027, 5, 1)
    assert ranked.loc["a", "starve_month_p90"] == dt.date(2027, 8, 1)
    # c is compute-bound: a shortfall, never starvation, at any percentile.
    assert ranked.loc["c", "starve_month_p10"] is None


def test_no_spread_no_band() -> None:
    result = band(_projection(), np.zeros(3))
    projection = _projection()
    assert np.array_equal(result.starve_p10_index, projection.outcome.starve_index)
    assert np.array_equal(result.starve_p90_index, projection.outcome.starve_index)


def test_the_band_widens_with_the_efficiency_spread() -> None:
    projection = _projection()
    narrow, wide = band(projection, np.full(3, 0.05)), band(projection, np.full(3, 0.3))
    a = 0
    assert wide.starve_p10_index[a] <= narrow.starve_p10_index[a]
    assert wide.starve_p90_index[a] >= narrow.starve_p90_index[a]
    assert (wide.starve_p90_index[a] - wide.starve_p10_index[a]) > (
        narrow.starve_p90_index[a] - narrow.starve_p10_index[a]
    )


def test_demand_growth_sigma_widens_later_months_only() -> None:
    # s(t) = 0.5·(t/12)/(1 + 1.25): 0 at t = 0, 0.185 at t = 10.
    workloads = validate_frame(
        _scenario_s().assign(demand_growth_sigma=0.5), WORKLOADS, "test workloads"
    )
    result = band(_projection(workloads), np.zeros(3))
    assert result.spread[0, 0] == 0
    assert result.spread[0, 10] == pytest.approx(0.5 * (10 / 12) / 2.25)
    assert result.starve_p10_index[0] < 5 < result.starve_p90_index[0]


def test_band_is_ordered_for_many_random_workloads() -> None:
    rng = np.random.default_rng(3)
    n = 300
    frame = pd.concat([_scenario_s()] * (n // 3), ignore_index=True)
    frame["workload_id"] = [f"w{i}" for i in range(n)]
    frame["demand_units_per_s"] *= rng.uniform(0.5, 2.0, n)
    frame["pool_share"] = 1.0 / n
    frame["demand_growth_sigma"] = rng.uniform(0, 1, n)
    projection = _projection(validate_frame(frame, WORKLOADS, "random"))
    result = band(projection, rng.uniform(0, 0.5, n))

    def later(index: np.ndarray) -> np.ndarray:
        return np.where(index == NEVER, 10**6, index)

    p50 = later(projection.outcome.starve_index)
    assert (later(result.starve_p10_index) <= p50).all()
    assert (p50 <= later(result.starve_p90_index)).all()
    assert (result.headroom_p10 <= projection.outcome.headroom).all()


def test_supply_spread_is_the_binding_efficiencys_spread() -> None:
    # Decode workloads a, b are memory-bound: decode's fitted bandwidth spread 0.2. Training
    # workload c is compute-bound: training keeps STREAM's compute figures, spread 0.35.
    fitted = FittedDefaults({("decode", "Acme"): Efficiency(0.85, "fit", 0.2)}, 0.35)
    spread = supply_spread(_projection(fitted=fitted).projector)
    assert spread == pytest.approx([0.2, 0.2, 0.35])


def test_rank_json_rows_carry_the_band() -> None:
    rows = ranking_rows(rank(_projection(), supply_spread=np.full(3, 0.1)).ranking)
    a = next(r for r in rows if r["workload_id"] == "a")
    assert (a["starve_month_p10"], a["starve_month"], a["starve_month_p90"]) == (
        "2027-05",
        "2027-06",
        "2027-08",
    )
    c = next(r for r in rows if r["workload_id"] == "c")
    assert c["starve_month_p10"] is None and c["starve_month_p90"] is None


def test_a_fitted_efficiency_takes_its_classs_leave_one_source_out_spread() -> None:
    """With the backtest's leave-one-source-out spreads dense 0.1, MoE 0.4 and all 0.25:
    a (decode, memory-bound, dense preset) gets 0.1 in place of the fit's 0.2; b (decode,
    MoE preset) 0.4; c (training, compute-bound on STREAM's figures, not fitted) keeps 0.35.
    Without presets a and b take the "all" spread, 0.25."""
    fitted = FittedDefaults(
        {("decode", "Acme"): Efficiency(0.85, "fit", 0.2)},
        0.35,
        class_spread={"dense": 0.1, "MoE": 0.4, "all": 0.25},
    )
    presets = pd.Series(["llama-3.1-8b", "qwen3-30b-a3b", None], dtype=object)
    named = _scenario_s().assign(model_preset=presets.to_numpy())
    workloads = validate_frame(named, WORKLOADS, "test workloads")
    projection = _projection(workloads, fitted=fitted)
    assert band(projection).supply_spread == pytest.approx([0.1, 0.4, 0.35])
    unnamed = _projection(fitted=fitted)
    assert band(unnamed).supply_spread == pytest.approx([0.25, 0.25, 0.35])
    assert workload_classes(workloads).tolist() == [0, 1, 3]
