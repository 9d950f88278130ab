"""Cost and energy of a what-if scenario, computed by hand.

Catalog x1 (``test_projection``): usable BW 8.5e11 B/s; here with a 500 W TDP. Pool p holds one
x1 (baseline); scenario "more" adds one on 2027-02-01 at $10,000. One decode workload, AI 10
FLOP/byte (memory-bound), counted in tokens, the whole pool: one x1 serves 8.5e12/10 = 8.5e11
tokens/s, two serve 1.7e12. Demand today 8.5e11/1.4, growing 125 %/year: the baseline starves
at t = 5 (1.4/1.5^(5/6) = 0.9986); with two x1 from t = 1, headroom 2.8/1.5^(t/6) stays >= 1
until t > 6·ln 2.8/ln 1.5 = 15.2, past the 12-month horizon: 12 − 5 = 7 months gained.

At the last month: added capacity 1.7e12 − 8.5e11 = 8.5e11 tokens/s; $10,000/8.5e11 =
1.176e-8 $ per token/s; power 500 W (baseline) and 1000 W: 1.7e9 tokens per joule in both;
7 months / ($10,000/$1M) = 700 months per $1M.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from hardware_profiles.parquet import validate_frame
from hardware_profiles.roadmaps import split_scenarios
from hardware_profiles.schema import WORKLOADS, Profiles
from tasks.analysis.scenarios.whatif import compare
from tasks.analysis.supply.calibration import calibrate
from tests.analysis.projection.test_projector import _catalog, _roadmap, _workload

START = dt.date(2027, 1, 1)


def _compare(tdp: float | None) -> pd.DataFrame:
    catalog = _catalog()
    catalog["tdp_watts"] = [tdp, tdp]
    workloads = validate_frame(
        pd.DataFrame([_workload("a", 10.0, 1.0, 8.5e11, 1.4)]), WORKLOADS, "w"
    )
    roadmap = _roadmap(
        [("p", "2026-01-01", "x1", 1), ("p", "2027-02-01", "x1", 1)],
        unit_cost_usd=[None, 10_000.0],
        scenario=[None, "more"],
    )
    scenarios = {
        name: Profiles(workloads, rows, catalog, "w", "r", "c")
        for name, rows in split_scenarios(roadmap).items()
    }
    comparison, _ = compare(scenarios, calibrate(catalog), START, 12)
    return comparison.set_index("scenario")


def test_dollars_per_token_rate_tokens_per_joule_and_months_per_million() -> None:
    rows = _compare(500.0)
    more, base = rows.loc["more"], rows.loc["baseline"]
    assert more["months_gained"] == 7
    assert more["added_tokens_per_s"] == pytest.approx(8.5e11)
    assert more["usd_per_added_token_per_s"] == pytest.approx(10_000 / 8.5e11)
    assert base["serving_power_watts"] == 500 and more["serving_power_watts"] == 1000
    assert base["tokens_per_joule"] == pytest.approx(1.7e9)
    assert more["tokens_per_joule"] == pytest.approx(1.7e9)
    assert more["months_gained_per_million_usd"] == pytest.approx(700)
    assert base["walls"] == "bandwidth 1" and more["walls"] == "none"
    assert pd.isna(base["usd_per_added_token_per_s"])  # nothing added


def test_unknown_tdp_leaves_energy_unknown() -> None:
    rows = _compare(None)
    assert rows.loc["more", ["tokens_per_joule", "serving_power_watts"]].isna().all()
