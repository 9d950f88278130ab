"""Roofline, calibration and today's ranking, on scenarios small enough to compute by hand."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from hardware_profiles.errors import ProfileError
from hardware_profiles.fleet import negative_fleet_row
from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import CATALOG, MEASUREMENTS, ROADMAP, WORKLOADS
from tasks.analysis.projection.projector import project
from tasks.analysis.ranking.ranking import rank
from tasks.analysis.supply.calibration import calibrate


def roofline_today(
    workloads: pd.DataFrame,
    roadmap: pd.DataFrame,
    calibrated: pd.DataFrame,
    today: dt.date,
    source: str = "workloads",
) -> pd.DataFrame:
    """Today's ranking: the projection's first month."""
    projection = project(
        workloads, roadmap, calibrated, today.replace(day=1), 1, workloads_source=source
    )
    return rank(projection, with_mitigations=False).ranking


TODAY = dt.date(2026, 11, 15)


def _catalog() -> pd.DataFrame:
    row = {
        "vendor": "Acme",
        "device_kind_patterns": [],
        "memory_bytes": 10**11,
        "peak_flops_per_s_fp32": None,
        "peak_flops_per_s_tf32": None,
        "peak_flops_per_s_fp16": None,
        "peak_flops_per_s_fp8": None,
        "peak_flops_per_s_int8": None,
        "release_date": None,
        "list_price_usd": None,
        "source": "test",
    }
    return validate_frame(
        pd.DataFrame(
            [
                {
                    **row,
                    "accelerator_id": "x1",
                    "name": "X1",
                    "mem_bandwidth_bytes_per_s": 1e12,
                    "peak_flops_per_s_bf16": 100e12,
                },
                {
                    **row,
                    "accelerator_id": "x2",
                    "name": "X2",
                    "mem_bandwidth_bytes_per_s": 2e12,
                    "peak_flops_per_s_bf16": 100e12,
                },
            ]
        ),
        CATALOG,
        "test catalog",
    )


def _roadmap(rows: list[tuple[str, str, str, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["pool", "effective_date", "accelerator_id", "count_delta"])
    frame["effective_date"] = pd.to_datetime(frame["effective_date"]).dt.date
    frame["unit_cost_usd"] = None
    return validate_frame(frame, ROADMAP, "test roadmap")


def _workloads(rows: list[tuple[str, str, float, float, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            {
                "workload_id": w,
                "name": w.upper(),
                "owner": "o",
                "pool": pool,
                "phase": "decode",
                "precision": "bf16",
                "unit": "token",
                "flops_per_unit": flops,
                "bytes_per_unit": nbytes,
                "memory_footprint_bytes": 0.0,
                "demand_units_per_s": demand,
                "demand_growth_per_year": 0.0,
            }
            for w, pool, flops, nbytes, demand in rows
        ]
    )
    return validate_frame(frame, WORKLOADS, "test workloads")


def test_hand_computed_utilisation_bound_and_rank() -> None:
    # Pool p: 2 x X1. Defaults: BW = 0.85 * 1e12 = 8.5e11 B/s, F = 0.70 * 100e12 = 7e13.
    # a: AI 10  -> attains min(7e13, 10 * 8.5e11 = 8.5e12) = 8.5e12 per device: u = 0.121428..
    # b: AI 1000 -> attains 7e13 per device: u = 1, compute-bound.
    calibrated = calibrate(_catalog())
    roadmap = _roadmap([("p", "2026-01-01", "x1", 2)])
    workloads = _workloads([("b", "p", 1000.0, 1.0, 10.0), ("a", "p", 10.0, 1.0, 1e11)])
    ranked = roofline_today(workloads, roadmap, calibrated, TODAY)
    assert list(ranked["workload_id"]) == ["a", "b"]
    a, b = ranked.iloc[0], ranked.iloc[1]
    assert a["utilization_now"] == pytest.approx(8.5e12 / 7e13)
    assert a["bound"] == "memory" and b["bound"] == "compute"
    assert a["ridge_flops_per_byte"] == pytest.approx(7e13 / 8.5e11)
    # Pool supply at full share: a 2 * 8.5e12 / 10 = 1.7e12 units/s; b 2 * 7e13 / 1000 = 1.4e11.
    # Needs: a 1e11 / 1.7e12 = 0.0588.., b 10 / 1.4e11; shared by need -> equal headroom.
    need = 1e11 / 1.7e12 + 10 / 1.4e11
    assert a["headroom_now"] == pytest.approx(1 / need)
    assert b["headroom_now"] == pytest.approx(1 / need)


def test_mixed_pool_sums_each_models_attainable_rate() -> None:
    # 1 x X1 (BW 8.5e11) + 1 x X2 (BW 1.7e12); AI 10: 8.5e12 + 1.7e13 over peak 2 * 7e13.
    calibrated = calibrate(_catalog())
    roadmap = _roadmap([("p", "2026-01-01", "x1", 1), ("p", "2026-02-01", "x2", 1)])
    workloads = _workloads([("a", "p", 10.0, 1.0, 1.0)])
    row = roofline_today(workloads, roadmap, calibrated, TODAY).iloc[0]
    assert row["utilization_now"] == pytest.approx((8.5e12 + 1.7e13) / 1.4e14)


def test_measured_efficiency_replaces_the_default_for_that_model_only() -> None:
    measurement = {
        "run_id": "r",
        "measured_at": pd.Timestamp("2026-11-01", tz="UTC"),
        "host": "h",
        "device_index": 0,
        "platform": "gpu",
        "device_kind": "X1",
        "accelerator_id": "x1",
        "probe": "triad",
        "dtype": "float32",
        "working_set_bytes": 1,
        "repetitions": 5,
        "best": 9e11,
        "median": 8.8e11,
        "p10": 8.7e11,
        "p90": 8.9e11,
        "cv": 0.01,
        "unit": "bytes_per_s",
        "spec": 1e12,
        "efficiency": 0.9,
        "status": "ok",
        "detail": "",
        "software": "",
    }
    measurements = validate_frame(pd.DataFrame([measurement]), MEASUREMENTS, "m")
    calibrated = calibrate(_catalog(), measurements).set_index("accelerator_id")
    assert calibrated.loc["x1", "bandwidth_efficiency"] == pytest.approx(0.9)
    assert calibrated.loc["x1", "bandwidth_from"] == "measured"
    assert calibrated.loc["x2", "bandwidth_efficiency"] == pytest.approx(0.85)
    assert calibrated.loc["x2", "bandwidth_from"] == "default"


def test_retiring_more_than_the_pool_holds_is_found() -> None:
    roadmap = _roadmap([("p", "2026-01-01", "x1", 2), ("p", "2026-05-01", "x1", -3)])
    assert negative_fleet_row(roadmap) == 1


def test_precision_without_a_peak_names_the_row() -> None:
    calibrated = calibrate(_catalog())
    roadmap = _roadmap([("p", "2026-01-01", "x1", 1)])
    workloads = _workloads([("a", "p", 10.0, 1.0, 1.0), ("b", "p", 10.0, 1.0, 1.0)])
    workloads.loc[1, "precision"] = "fp8"
    with pytest.raises(ProfileError) as caught:
        roofline_today(workloads, roadmap, calibrated, TODAY, "w.parquet")
    assert (caught.value.row, caught.value.column) == (2, "precision")
    assert "'fp8' has no peak on x1" in str(caught.value)
