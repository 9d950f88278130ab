"""The precision each workload needs on each model of its pool, worked by hand.

Catalog: "old" has 1e12 B/s and bf16 100e12 FLOP/s, no fp8 or fp4 units; "new" has 2e12 B/s,
bf16 100e12, fp8 200e12 and fp4 400e12. Default efficiencies: bandwidth 0.85, FLOPs 0.70, so
usable bandwidth is 0.85e12 (old) and 1.7e12 B/s (new).

Pool "a" holds 4 old from before the start (2027-01) and 4 new from 2027-04: 4 devices in
months 0-2, 8 after. On one model the pool holds 4 then 8 of it; with no demand growth the
first month (4 devices) decides. Every workload is a decode row of batch 1 without a preset,
bf16: 2e9 FLOPs and 3e9 bytes per token, split (two FLOPs per weight, 2 bytes a weight) into
weights W = 2 x 2e9 / 2 / 1 = 2e9 bytes and KV = 1e9 bytes; intensity 0.67 FLOP/byte, far
below both ridges, so memory-bound: headroom = share x 4 x BW / (bytes x demand).

Bytes per token under each option:
  as is            3e9
  fp8 KV cache     2e9 + 1e9 / 2                          = 2.5e9
  int8 weights     1e9 + 2e9 / 2                          = 2e9
  int4 weights     1e9 + 2e9 x (4.125 / 8) / 2            = 1.515625e9
  fp8 compute      3e9 / 2                                = 1.5e9      (new only)
  fp4 compute      3e9 x (4.5 / 8) / 2                    = 0.84375e9  (new only)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.examples import example_roadmap
from hardware_profiles.parquet import validate_frame
from hardware_profiles.schema import CATALOG, ROADMAP, WORKLOADS
from tasks.analysis.projection.projector import project
from tasks.analysis.ranking.precision_needs import precision_needs
from tasks.analysis.supply.calibration import calibrate
from tasks.analysis.workload.examples import example_workloads

START = dt.date(2027, 1, 1)


def _catalog() -> pd.DataFrame:
    common = {"vendor": "Acme", "device_kind_patterns": [], "memory_bytes": 10**11}
    common |= {"release_date": None, "list_price_usd": None, "source": "test"}
    old = {"accelerator_id": "old", "name": "Old", "mem_bandwidth_bytes_per_s": 1e12}
    old |= {"peak_flops_per_s_bf16": 100e12}
    new = {"accelerator_id": "new", "name": "New", "mem_bandwidth_bytes_per_s": 2e12}
    new |= {"peak_flops_per_s_bf16": 100e12, "peak_flops_per_s_fp8": 200e12}
    new |= {"peak_flops_per_s_fp4": 400e12}
    frame = pd.DataFrame([common | old, common | new])
    for column in CATALOG.columns:
        if column not in frame:
            frame[column] = None
    return validate_frame(frame, CATALOG, "test catalog")


def _roadmap() -> pd.DataFrame:
    rows = [
        ("a", "2026-06-01", "old", 4),
        ("a", "2027-04-01", "new", 4),
        ("b", "2026-06-01", "new", 4),
    ]
    frame = pd.DataFrame(rows, columns=["pool", "effective_date", "accelerator_id", "count_delta"])
    frame["effective_date"] = pd.to_datetime(frame["effective_date"]).dt.date
    frame["unit_cost_usd"] = np.nan
    return validate_frame(frame, ROADMAP, "test roadmap")


def _row(name: str, pool: str, share: float, demand: float) -> dict[str, Any]:
    return {
        "workload_id": name,
        "name": name,
        "owner": "o",
        "pool": pool,
        "phase": "decode",
        "precision": "bf16",
        "unit": "token",
        "flops_per_unit": 2e9,
        "bytes_per_unit": 3e9,
        "memory_footprint_bytes": 1e10,
        "demand_units_per_s": demand,
        "demand_growth_per_year": 0.0,
        "pool_share": share,
        "batch": 1,
        "context_tokens": 4096,
    }


def _needs() -> pd.DataFrame:
    workloads = validate_frame(
        pd.DataFrame(
            [
                # old: 0.5 x 4 x 0.85e12 / 1000 = 1.7e9 bytes at most; new: 3.4e9.
                _row("w1", "a", 0.5, 1000.0),
                # old: 0.4 x 4 x 0.85e12 / 1000 = 1.36e9; new: 2.72e9.
                _row("w2", "a", 0.4, 1000.0),
                # old: 0.1 x 4 x 0.85e12 / 500 = 0.68e9; new: 1.36e9.
                _row("w3", "a", 0.1, 500.0),
                # pool b, 4 new: 4 x 1.7e12 / 3e9 / 1 = 2,267 x its demand: far from the wall.
                _row("w4", "b", 1.0, 1.0),
            ]
        ),
        WORKLOADS,
        "w.parquet",
    )
    projection = project(workloads, _roadmap(), calibrate(_catalog()), START, 6)
    return precision_needs(projection, np.arange(4))


def test_each_workload_gets_the_smallest_change_that_suffices_per_model() -> None:
    needs = _needs()
    got = {
        (r["workload_id"], r["accelerator_id"]): (r["need"], r["bytes_per_unit"])
        for r in needs.to_dict("records")
    }
    assert list(got) == [
        ("w1", "old"),
        ("w1", "new"),
        ("w2", "old"),
        ("w2", "new"),
        ("w3", "old"),
        ("w3", "new"),
    ]  # ranking order, then the order the pool receives its models; w4 is far from the wall
    # w1: 1.7e9 on old: int8 weights (2e9) do not fit, int4 weights (1.515625e9) do.
    assert got["w1", "old"] == ("weights:int4", pytest.approx(1.515625e9))
    # w1: 3.4e9 on new: today's 3e9 fits.
    assert got["w1", "new"] == ("as-is", pytest.approx(3e9))
    # w2: 1.36e9 on old: nothing storage-only fits and old has no fp8 or fp4 units.
    assert got["w2", "old"][0] == "none" and np.isnan(got["w2", "old"][1])
    # w2: 2.72e9 on new: an fp8 KV cache (2.5e9) keeps the most bytes of those that fit.
    assert got["w2", "new"] == ("kv:fp8", pytest.approx(2.5e9))
    # w3: 1.36e9 on new: fp8 compute (1.5e9) does not fit, fp4 compute (0.84375e9) does.
    assert got["w3", "new"] == ("compute:fp4", pytest.approx(0.84375e9))
    assert got["w3", "old"][0] == "none"


def test_months_and_missing_units_are_stated() -> None:
    needs = _needs().set_index(["workload_id", "accelerator_id"])
    assert needs.loc[("w1", "old"), "first_month"] == START
    assert needs.loc[("w1", "new"), "first_month"] == dt.date(2027, 4, 1)
    # As is: w1 starves on old in the first month (0.5 x 4 x 0.85e12 / 3e9 = 567 < 1000) and
    # never on new (1,133 >= 1000); w2 on new: 0.4 x 6.8e12 / 3e9 = 907 < 1000.
    assert needs.loc[("w1", "old"), "starve_month"] == START
    assert needs.loc[("w1", "new"), "starve_month"] is None
    assert needs.loc[("w2", "new"), "starve_month"] == START
    assert needs.loc[("w2", "old"), "unavailable"] == "no fp8 units; no fp4 units"
    assert needs.loc[("w2", "new"), "unavailable"] == ""
    assert needs.loc[("w2", "old"), "label"] == "none suffices"
    assert not needs["compute_short"].any()


def test_the_restricted_view_evaluates_its_rows_as_the_full_projection_does() -> None:
    # The view slices the projector's per-workload arrays; should the projector gain another,
    # this catches the view leaving it whole.
    projection = project(
        example_workloads(), example_roadmap(), calibrate(builtin_catalog()), START, 18
    )
    projector = projection.projector
    rows = np.array([4, 0, 2])
    view = projector.restricted(rows)
    full = projection.outcome
    part = view.evaluate(view.baseline_figures, projector.fleet.counts)
    np.testing.assert_allclose(part.headroom, full.headroom[rows])
    np.testing.assert_array_equal(part.memory_bound, full.memory_bound[rows])
    np.testing.assert_array_equal(part.starve_index, full.starve_index[rows])
