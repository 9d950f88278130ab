"""Pools whose hardware arrives later and workloads that start later, computed by hand.

Catalog and growth as in ``test_projection``: x1 gives a usable BW of 8.5e11 B/s and 7e13 bf16
FLOP/s; demand grows by 2.25^(t/12) = 1.5^(t/6). The projection starts 2027-01, 12 months.

Late pool: pool p gets its first x1 on 2027-06-15, so it is served from month 5 (2027-06). One
workload, AI 10 (memory-bound: 10·8.5e11 = 8.5e12 < 7e13), no share given: it gets the whole
pool, supply 8.5e12/10 = 8.5e11 units/s from 2027-06. Demand today D0 = 8.5e11/2: headroom at t
is 2/1.5^(t/6): 2027-06 (t = 5) 2/1.40202 = 1.4265; below 1 from t > 6·ln 2/ln 1.5 = 10.26, so
it starves in 2027-12 (t = 11, 2/2.10298 = 0.9510). Before 2027-06: not served, no figure.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.errors import ProfileError
from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import WORKLOADS
from tasks.analysis.projection.placement import Placement, place
from tasks.analysis.projection.projector import project
from tasks.analysis.ranking.ranking import rank, ranking_rows
from tasks.analysis.supply.calibration import calibrate
from tasks.analysis.workload.examples import example_workloads
from tests.analysis.projection import handmade
from tests.analysis.projection.test_projector import _catalog, _roadmap, _workload

START = dt.date(2027, 1, 1)


def _late(**overrides: object) -> pd.DataFrame:
    return validate_frame(
        pd.DataFrame([_workload("a", 10.0, 1.0, 8.5e11, 2.0, pool_share=None, **overrides)]),
        WORKLOADS,
        "w",
    )


def test_a_pool_whose_hardware_arrives_later_is_served_from_that_month() -> None:
    projection = project(
        _late(), _roadmap([("p", "2027-06-15", "x1", 1)]), calibrate(_catalog()), START, 12
    )
    headroom = projection.outcome.headroom[0]
    assert np.isnan(headroom[:5]).all()  # 2027-01 to 2027-05: no hardware, no figure
    assert headroom[5] == pytest.approx(2 / 1.5 ** (5 / 6))
    assert headroom[11] == pytest.approx(2 / 1.5 ** (11 / 6))
    row = rank(projection).ranking.iloc[0]
    assert row["served_from"] == dt.date(2027, 6, 1)
    assert row["starve_month"] == dt.date(2027, 12, 1)
    assert pd.isna(row["shortfall_month"])  # months without hardware are not a shortfall
    assert row["headroom_now"] == pytest.approx(1.4265, rel=1e-4)  # "now" = first served
    assert row["min_headroom"] == pytest.approx(0.9510, rel=1e-4)
    assert row["bound"] == "memory"


def test_a_pool_that_never_gets_hardware_is_unserved_and_ranked_last() -> None:
    workloads = validate_frame(
        pd.DataFrame(
            [
                _workload("a", 10.0, 1.0, 8.5e11, 2.0, pool_share=None),
                _workload("z", 10.0, 1.0, 8.5e11, 2.0, pool_share=None, pool="q"),
            ]
        ),
        WORKLOADS,
        "w",
    )
    roadmap = _roadmap([("p", "2026-01-01", "x1", 1), ("q", "2029-01-01", "x1", 1)])
    ranking = rank(project(workloads, roadmap, calibrate(_catalog()), START, 12)).ranking
    last = ranking.iloc[-1]
    assert last["workload_id"] == "z"
    assert pd.isna(last["served_from"]) and pd.isna(last["starve_month"])
    assert pd.isna(last["shortfall_month"]) and pd.isna(last["min_headroom"])
    row = ranking_rows(ranking)[-1]
    assert row["served_from"] is None and row["min_headroom"] is None
    json.dumps(ranking_rows(ranking), allow_nan=False)  # valid JSON: no NaN


def test_a_workload_starting_later_has_no_demand_before_and_its_demand_from_then() -> None:
    # start 2027-04 (s = 3): D(t) = D0·2.25^((t-3)/12), headroom 2/1.5^((t-3)/6) from t = 3;
    # below 1 from t - 3 > 10.26: t = 14, past the 12-month horizon: never starves.
    workloads = _late(start_month=dt.date(2027, 4, 1))
    projection = project(
        workloads, _roadmap([("p", "2026-01-01", "x1", 1)]), calibrate(_catalog()), START, 12
    )
    headroom = projection.outcome.headroom[0]
    assert np.isinf(headroom[:3]).all()
    assert headroom[3] == pytest.approx(2.0)
    assert headroom[11] == pytest.approx(2 / 1.5 ** (8 / 6))
    row = rank(projection).ranking.iloc[0]
    assert pd.isna(row["starve_month"])
    assert row["min_headroom"] == pytest.approx(2 / 1.5 ** (8 / 6))


def test_a_start_month_after_the_horizon_names_file_row_and_column() -> None:
    workloads = validate_frame(
        pd.DataFrame(
            [
                _workload("a", 10.0, 0.5, 8.5e11, 2.0),
                _workload("b", 10.0, 0.5, 8.5e11, 2.0, start_month=dt.date(2028, 1, 1)),
            ]
        ),
        WORKLOADS,
        "w",
    )
    with pytest.raises(ProfileError) as caught:
        project(
            workloads,
            _roadmap([("p", "2026-01-01", "x1", 1)]),
            calibrate(_catalog()),
            START,
            12,
            workloads_source="workloads.parquet",
        )
    assert (caught.value.row, caught.value.column) == (2, "start_month")
    assert "workloads.parquet, row 2, column 'start_month': start_month 2028-01 is after" in str(
        caught.value
    )


def test_h200s_arriving_in_2027_06_serve_a_new_pool_from_2027_06() -> None:
    catalog = builtin_catalog()
    workloads = example_workloads().head(1).assign(pool="new-cluster")
    roadmap = _roadmap(
        [
            ("inference", "2025-01-01", "nvidia-h100-sxm", 8),
            ("new-cluster", "2027-06-01", "nvidia-h200-sxm", 64),
        ]
    )
    ranking = rank(project(workloads, roadmap, calibrate(catalog), START, 18)).ranking
    assert ranking_rows(ranking)[0]["served_from"] == "2027-06"


def test_an_unserved_workload_is_recorded_in_the_history(tmp_path: Path) -> None:
    from hardware_profiles.schema import MEASUREMENTS
    from tasks.history import read_rankings, record_run

    workloads = validate_frame(
        pd.DataFrame(
            [
                _workload("a", 10.0, 1.0, 8.5e11, 2.0, pool_share=None),
                _workload("z", 10.0, 1.0, 8.5e11, 2.0, pool_share=None, pool="q"),
            ]
        ),
        WORKLOADS,
        "w",
    )
    roadmap = _roadmap([("p", "2026-01-01", "x1", 1), ("q", "2029-01-01", "x1", 1)])
    ranking = rank(project(workloads, roadmap, calibrate(_catalog()), START, 12)).ranking
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in MEASUREMENTS.columns})
    record_run(str(tmp_path), "r1", empty, ranking, dt.datetime(2027, 1, 5, tzinfo=dt.UTC))
    recorded = read_rankings(str(tmp_path)).set_index("workload_id")
    assert recorded.loc["z", "headroom_now"] == 0.0  # no hardware: no supply
    assert recorded.loc["a", "headroom_now"] == pytest.approx(2.0)


def _placed(rows: list[dict[str, object]]) -> Placement:
    """Pool "now" holds 4 h100 from the start; pool "late" holds 2 from 2027-03 (month 2)."""
    return place(
        pd.DataFrame(rows),
        handmade.fleet([[4, 4, 4], [0, 0, 2]], ["now", "late"]),
        handmade.ceilings(),
        "w.parquet",
        "r.parquet",
    )


def _placement_row(**extra: object) -> dict[str, object]:
    return {
        "workload_id": "w",
        "pool": "now",
        "phase": "decode",
        "precision": "bf16",
        "demand_units_per_s": 10.0,
        "demand_growth_per_year": 0.0,
        **extra,
    }


def test_place_on_hand_built_records() -> None:
    """Row 2 starts in 2027-02 (month 1) on the late pool, growing 100 %/year: its demand is 0
    in month 0, 10 at its start and 10 x 2^(1/12) = 10.595 a month later; its pool holds
    hardware from month 2."""
    placement = _placed(
        [
            _placement_row(),
            _placement_row(
                workload_id="v",
                pool="late",
                phase="prefill",
                demand_growth_per_year=1.0,
                start_month=dt.date(2027, 2, 1),
            ),
        ]
    )
    assert placement.pool_index.tolist() == [0, 1]
    assert placement.phase_index.tolist() == [0, 1]  # decode, prefill
    assert placement.served_from.tolist() == [0, 2]
    assert placement.start_index.tolist() == [0, 1]
    assert placement.demand[0].tolist() == [10, 10, 10]
    assert placement.demand[1].tolist() == pytest.approx([0, 10, 10 * 2 ** (1 / 12)])
    values = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert placement.at_first_served(values).tolist() == [1.0, 6.0]
    assert placement.take(np.array([1])).served_from.tolist() == [2]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"pool": "nope"},
            "w.parquet, row 1, column 'pool': pool 'nope' has no hardware in the roadmap "
            "(r.parquet); its pools are now, late",
        ),
        (
            {"start_month": dt.date(2027, 4, 1)},
            "w.parquet, row 1, column 'start_month': start_month 2027-04 is after the horizon "
            "2027-01 to 2027-03",
        ),
        (
            {"precision": "fp8"},
            "w.parquet, row 1, column 'precision': precision 'fp8' has no peak on h100 in pool "
            "'now' for workload 'w' (no fp8 units)",
        ),
    ],
)
def test_a_row_that_cannot_be_placed_names_file_row_and_column(
    extra: dict[str, object], message: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        _placed([_placement_row(**extra)])
    assert str(caught.value).startswith(message)
