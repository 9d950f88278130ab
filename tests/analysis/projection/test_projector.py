"""Projection, starvation, ranking, mitigations and what-if on scenarios computed by hand.

The catalog (``_catalog``): x1 has 1e12 B/s, 100e12 bf16 and 200e12 fp8 FLOP/s and no int8
peak; x2 has 2e12 B/s and the same FLOP/s. Default efficiencies 0.85 and 0.70 give x1 a usable
BW = 8.5e11 B/s, F_bf16 = 7e13 and F_fp8 = 1.4e14 FLOP/s; x2 BW = 1.7e12 B/s.

Scenario S: pool p holds 1 x1 from 2026-01; the projection starts 2027-01. Every workload has
growth g = 1.25, so demand grows by 2.25^(t/12) = 1.5^(t/6), and is sized to a chosen headroom
today h0: headroom(t) = h0 / 1.5^(t/6), below 1 from the first t with t > 6·ln(h0)/ln(1.5).
- a: AI 10, share 0.5: 10·8.5e11 = 8.5e12 < 7e13, memory-bound; supply 0.5·8.5e12/10 = 4.25e11
  units/s. h0 = 1.4: 6·ln 1.4/ln 1.5 = 6·0.33647/0.40547 = 4.979 -> t = 5 (1.4/1.5^(5/6) =
  1.4/1.40202 = 0.9986; t = 4: 1.4/1.31037 = 1.068) -> starves 2027-06.
- b: AI 20, share 0.3: 1.7e13 < 7e13, memory-bound; supply 0.3·1.7e13/20 = 2.55e11. h0 = 1.2:
  6·0.18232/0.40547 = 2.698 -> t = 3 (1.2/1.22474 = 0.9798; t = 2: 1.2/1.14471 = 1.048)
  -> starves 2027-04.
- c: AI 1000, share 0.2: 8.5e14 > 7e13, compute-bound; supply 0.2·7e13/1000 = 1.4e10. h0 = 1.1:
  6·0.09531/0.40547 = 1.410 -> t = 2: a compute-bound shortfall in 2027-03, not starvation.
Rank: b (2027-04), a (2027-06), then c (never starves).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.errors import ProfileError
from hardware_profiles.parquet import validate_frame
from hardware_profiles.roadmaps import baseline_name, split_scenarios
from hardware_profiles.schema import CATALOG, ROADMAP, WORKLOADS, Profiles
from tasks.analysis.projection.horizon import NEVER, HorizonError, fleet_by_month, horizon_months
from tasks.analysis.projection.placement import Placement
from tasks.analysis.projection.projector import Projector, project, share_of_pools
from tasks.analysis.ranking.ranking import rank, ranking_rows, records
from tasks.analysis.scenarios.whatif import compare, purchase_cost_usd
from tasks.analysis.supply.calibration import CalibrationError, calibrate
from tasks.analysis.workload.examples import example_workloads
from tasks.analysis.workload.figures import Figures
from tasks.analysis.workload.presets import estimate_workload
from tasks.analysis.workload.variants import (
    PRECISION_CHANGES,
    batch_figures,
    decode_split,
    precision_variant,
)
from tests.analysis.projection import handmade

START = dt.date(2027, 1, 1)
G = 1.25


def _catalog() -> pd.DataFrame:
    row = {
        "vendor": "Acme",
        "device_kind_patterns": [],
        "memory_bytes": 10**11,
        "peak_flops_per_s_fp32": None,
        "peak_flops_per_s_tf32": None,
        "peak_flops_per_s_bf16": 100e12,
        "peak_flops_per_s_fp16": None,
        "peak_flops_per_s_fp8": 200e12,
        "peak_flops_per_s_int8": None,
        "release_date": None,
        "list_price_usd": None,
        "source": "test",
    }
    return validate_frame(
        pd.DataFrame(
            [
                {**row, "accelerator_id": "x1", "name": "X1", "mem_bandwidth_bytes_per_s": 1e12},
                {**row, "accelerator_id": "x2", "name": "X2", "mem_bandwidth_bytes_per_s": 2e12},
            ]
        ),
        CATALOG,
        "test catalog",
    )


def _roadmap(
    rows: list[tuple[str, str, str, int]],
    unit_cost_usd: list[float | None] | None = None,
    scenario: list[str | None] | None = None,
) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["pool", "effective_date", "accelerator_id", "count_delta"])
    frame["effective_date"] = pd.to_datetime(frame["effective_date"]).dt.date
    frame["unit_cost_usd"] = pd.Series(unit_cost_usd or [None] * len(frame), dtype=float)
    if scenario is not None:
        frame["scenario"] = pd.Series(scenario, dtype=object)
    return validate_frame(frame, ROADMAP, "test roadmap")


def _workload(
    workload_id: str, ai: float, share: float, supply: float, h0: float, **overrides: object
) -> dict[str, object]:
    return {
        "workload_id": workload_id,
        "name": workload_id.upper(),
        "owner": "o",
        "pool": "p",
        "phase": "decode",
        "precision": "bf16",
        "unit": "token",
        "flops_per_unit": ai,
        "bytes_per_unit": 1.0,
        "memory_footprint_bytes": 0.0,
        "demand_units_per_s": supply / h0,
        "demand_growth_per_year": G,
        "pool_share": share,
        **overrides,
    }


def _scenario_s() -> pd.DataFrame:
    return validate_frame(
        pd.DataFrame(
            [
                _workload("a", 10.0, 0.5, 4.25e11, 1.4),
                _workload("b", 20.0, 0.3, 2.55e11, 1.2),
                _workload("c", 1000.0, 0.2, 1.4e10, 1.1, phase="training", unit="step"),
            ]
        ),
        WORKLOADS,
        "test workloads",
    )


BASE = [("p", "2026-01-01", "x1", 1)]


def _ranked(bandwidth_efficiency: float = 0.85) -> pd.DataFrame:
    calibrated = calibrate(_catalog(), bandwidth_efficiency=bandwidth_efficiency)
    projection = project(_scenario_s(), _roadmap(BASE), calibrated, START, 12)
    return rank(projection).ranking.set_index("workload_id")


def test_hand_computed_starvation_months_and_order() -> None:
    ranking = _ranked()
    assert list(ranking.index) == ["b", "a", "c"]
    assert list(ranking["rank"]) == [1, 2, 3]
    assert ranking.loc["b", "starve_month"] == dt.date(2027, 4, 1)
    assert ranking.loc["a", "starve_month"] == dt.date(2027, 6, 1)
    assert ranking.loc["a", "headroom_now"] == pytest.approx(1.4)
    assert ranking.loc["a", "min_headroom"] == pytest.approx(1.4 / 1.5 ** (11 / 6))
    assert ranking.loc["a", "utilization_now"] == pytest.approx(8.5e12 / 7e13)
    assert ranking.loc["a", "ridge_flops_per_byte"] == pytest.approx(7e13 / 8.5e11)


def test_a_compute_bound_shortfall_is_reported_but_is_not_starvation() -> None:
    c = _ranked().loc["c"].to_dict()
    assert c["bound"] == "compute"
    assert c["shortfall_month"] == dt.date(2027, 3, 1)
    assert c["min_headroom"] < 1
    assert pd.isna(c["starve_month"])


def test_raising_bandwidth_efficiency_moves_starvation_later() -> None:
    # BW x 0.95/0.85: a h0 = 1.4·0.95/0.85 = 1.5647 -> 6·ln 1.5647/ln 1.5 = 6.63 -> t = 7;
    # b h0 = 1.2·0.95/0.85 = 1.3412 -> 6·0.29356/0.40547 = 4.34 -> t = 5.
    ranking = _ranked(bandwidth_efficiency=0.95)
    assert ranking.loc["a", "starve_month"] == dt.date(2027, 8, 1)
    assert ranking.loc["b", "starve_month"] == dt.date(2027, 6, 1)


def test_lower_precision_moves_starvation_as_computed() -> None:
    # a at fp8: bytes 1 -> 0.5, AI 20, F_fp8 1.4e14: 20·8.5e11 = 1.7e13 < 1.4e14, still
    # memory-bound, supply doubles: h0 = 2.8 -> 6·ln 2.8/ln 1.5 = 6·1.02962/0.40547 = 15.24 ->
    # t = 16 (2.8/1.5^(16/6) = 2.8/2.94849 = 0.9496; t = 15: 2.8/2.75568 = 1.016): 2028-05,
    # 11 months after 2027-06. Weight-only int8/int4 would need the row's weights told apart
    # from its KV cache (no batch, no model), and x1 has no fp4 units, so those do not apply.
    # Moving to pool q (1 x2, twice the bandwidth) doubles supply alike.
    roadmap = _roadmap([*BASE, ("q", "2026-01-01", "x2", 1)])
    projection = project(_scenario_s(), roadmap, calibrate(_catalog()), START, 24)
    ranked = rank(projection)
    table = {(m.workload_id, m.mitigation): m for m in records(ranked.mitigations)}
    fp8 = table[("a", "compute:fp8")]
    assert fp8.applicable and fp8.reason == ""
    assert projection.months[fp8.starve_index] == dt.date(2028, 5, 1)
    assert fp8.months_gained == 11
    int8 = table[("a", "weights:int8")]
    assert not int8.applicable
    assert int8.reason == "weights and KV cache cannot be told apart from this row"
    fp4 = table[("a", "compute:fp4")]
    assert (fp4.applicable, fp4.reason) == (False, "x1: no fp4 units")
    assert table[("a", "pool:q")].months_gained == 11
    assert not table[("a", "pool:p")].applicable  # it is already there
    best = ranked.ranking.set_index("workload_id").loc["a"]
    assert (best["best_mitigation"], best["months_gained"]) == ("fp8 compute", 11)


def test_decode_batch_split_and_larger_batch() -> None:
    # bf16 decode, B = 4, 20 FLOPs/token: weights/token ≈ 2·20/2/4 = 5 B, so of 8 B/token KV is
    # 3 B. x2: 3 + 5/2 = 5.5; x4: 3 + 5/4 = 4.25. Batch 1 with 8 B/token: weights 20 B > 8,
    # cannot split; a prefill row is never split.
    rows = [
        _workload("d", 20.0, 0.1, 1.0, 2.0, bytes_per_unit=8.0, batch=4),
        _workload("e", 20.0, 0.1, 1.0, 2.0, bytes_per_unit=8.0, batch=1),
        _workload("f", 20.0, 0.1, 1.0, 2.0, bytes_per_unit=8.0, batch=4, phase="prefill"),
    ]
    workloads = validate_frame(pd.DataFrame(rows), WORKLOADS, "w")
    weights, kv = decode_split(workloads)
    assert weights[0] == pytest.approx(5.0) and kv[0] == pytest.approx(3.0)
    assert np.isnan(weights[1:]).all()
    figures = Figures.of(workloads)
    doubled, applicable = batch_figures(figures, workloads, 2)
    assert doubled.bytes_per_unit[0] == pytest.approx(5.5)
    assert applicable.tolist() == [True, False, False]
    assert batch_figures(figures, workloads, 4)[0].bytes_per_unit[0] == pytest.approx(4.25)


def test_rows_from_a_preset_are_re_derived_by_the_workload_model() -> None:
    # The examples come from presets: a mitigation re-runs the model instead of scaling the row,
    # so batch 1 decode (which the row alone cannot split) gets a batch x2 figure too.
    workloads = example_workloads()
    figures = Figures.of(workloads)
    agent = workloads.index[workloads["workload_id"] == "agent-8b-decode"][0]
    row = workloads.loc[agent].to_dict()
    doubled, applicable = batch_figures(figures, workloads, 2)
    expected = estimate_workload(row, batch=2)
    assert expected is not None and applicable[agent]
    assert doubled.bytes_per_unit[agent] == pytest.approx(expected.bytes_per_unit)
    assert doubled.bytes_per_unit[agent] < figures.bytes_per_unit[agent]
    compute_fp8 = next(c for c in PRECISION_CHANGES if c.key == "compute:fp8")
    fp8, _, _ = precision_variant(figures, workloads, compute_fp8)
    expected = estimate_workload(row, weights="fp8", kv="fp8", compute="fp8")
    assert expected is not None
    assert fp8.bytes_per_unit[agent] == pytest.approx(expected.bytes_per_unit)


def test_roadmap_changes_apply_from_their_month() -> None:
    roadmap = _roadmap([("p", "2026-06-15", "x1", 2), ("p", "2027-03-31", "x2", 1)])
    fleet = fleet_by_month(roadmap, horizon_months(START, 4))
    assert fleet.models == ["x1", "x2"]
    assert fleet.counts[0].tolist() == [[2, 2, 2, 2], [0, 0, 1, 1]]


def test_what_if_rescues_and_costs() -> None:
    # "more" adds 1 x1 from 2027-03 at $1000: supply doubles from t = 2. b: h0 2.4 ->
    # 6·ln 2.4/ln 1.5 = 12.96, a: 15.24 -> neither starves within 12 months. Months gained:
    # (12 - 5) + (12 - 3) = 16; $1000 / 16 = $62.5 per month. The base row predates the horizon.
    roadmap = _roadmap(
        [*BASE, ("p", "2027-03-01", "x1", 1)],
        unit_cost_usd=[None, 1000.0],
        scenario=[None, "more"],
    )
    roadmap = pd.concat(
        [roadmap, _roadmap([("p", "2027-01-01", "x1", 0)], scenario=["baseline"])],
        ignore_index=True,
    )
    split = split_scenarios(roadmap)
    assert list(split) == ["baseline", "more"]
    # The baseline is the shared row plus the row named "baseline"; "more" adds its purchase.
    assert (len(split["baseline"]), len(split["more"])) == (2, 2)
    catalog = _catalog()
    scenarios = {
        name: Profiles(_scenario_s(), rows, catalog, "w", "r", "c") for name, rows in split.items()
    }
    comparison, _ = compare(scenarios, calibrate(catalog), START, 12)
    rows = comparison.set_index("scenario")
    assert rows.loc["baseline", "starving"] == 2
    assert rows.loc["more", "starving"] == 0
    assert sorted(rows.at["more", "rescued"]) == ["a", "b"]  # type: ignore[arg-type]
    assert rows.loc["more", "months_gained"] == 16
    assert rows.loc["more", "extra_cost_usd"] == pytest.approx(1000.0)
    assert rows.loc["more", "cost_per_month_gained_usd"] == pytest.approx(62.5)


def test_with_no_shared_rows_the_first_scenario_is_the_baseline() -> None:
    roadmap = _roadmap(
        [("p", "2026-01-01", "x1", 2), ("p", "2026-01-01", "x2", 2)], scenario=["one", "two"]
    )
    split = split_scenarios(roadmap)
    assert list(split) == ["one", "two"]
    assert baseline_name(list(split)) == "one"


def test_purchase_cost_falls_back_to_the_list_price_or_is_unknown() -> None:
    catalog = _catalog()
    roadmap = _roadmap([("p", "2027-02-01", "x1", 3)])
    assert purchase_cost_usd(roadmap, catalog, horizon_months(START, 12)) is None
    catalog.loc[0, "list_price_usd"] = 500.0
    assert purchase_cost_usd(roadmap, catalog, horizon_months(START, 12)) == 1500.0


@pytest.mark.parametrize("months", [0, 1000])
def test_horizon_out_of_range(months: int) -> None:
    with pytest.raises(HorizonError, match=f"horizon of {months} months is out of range"):
        project(_scenario_s(), _roadmap(BASE), calibrate(_catalog()), START, months)


def test_default_efficiency_out_of_range_is_a_user_error() -> None:
    with pytest.raises(CalibrationError, match=r"must be in \(0, 1\], got 1.5"):
        calibrate(_catalog(), bandwidth_efficiency=1.5)


def test_json_rows_carry_the_contract_fields() -> None:
    projection = project(_scenario_s(), _roadmap(BASE), calibrate(_catalog()), START, 12)
    rows = ranking_rows(rank(projection).ranking)
    assert rows[0] == {
        "workload_id": "b",
        "rank": 1,
        "starve_month": "2027-04",
        "starve_month_p10": "2027-04",  # no spread without published runs: no band
        "starve_month_p90": "2027-04",
        "bound": "memory",
        "utilization_now": pytest.approx(1.7e13 / 7e13),
        "min_headroom": pytest.approx(1.2 / 1.5 ** (11 / 6)),
        "best_mitigation": "fp8 compute",
        "months_gained": 9,  # fp8: h0 2.4 -> t = 13, past the horizon: 12 - 3
        "served_from": "2027-01",
        "wall": "bandwidth",  # starvation is the bandwidth wall
        "wall_month": "2027-04",
        "wall_month_p10": "2027-04",  # a bandwidth wall's band is its starvation's
        "wall_month_p90": "2027-04",
        "devices_per_replica": None,  # no catalog given: no replica sizing
        "max_batch": None,
        "served_batch": None,
        "wall_remedy": None,
        "replica_layout": None,  # no request shape, and no replica without a catalog
        "tpot_under_load_s": None,
        "output_tokens_per_s_under_load": None,
        "step_time_s": None,  # not a training job
        "engine_generation": "engines from 2025-07",  # no engine stated: a current one
        "expert_share": None,  # no MoE preset: no routed experts
        "expert_share_source": None,
    }
    assert rows[2]["starve_month"] is None and rows[2]["best_mitigation"] is None


def test_the_builtin_examples_project_on_the_builtin_catalog() -> None:
    from hardware_profiles.examples import example_roadmap

    projection = project(
        example_workloads(), example_roadmap(), calibrate(builtin_catalog()), START, 18
    )
    ranking = rank(projection).ranking
    assert len(ranking) == len(example_workloads())
    assert ranking["rank"].tolist() == list(range(1, len(ranking) + 1))


def test_an_unknown_scenario_lists_the_valid_ones() -> None:
    from tasks.profiles import pick_scenario

    roadmap = _roadmap([*BASE, ("p", "2027-03-01", "x1", 1)], scenario=[None, "more"])
    profiles = Profiles(_scenario_s(), roadmap, _catalog(), "w", "r.parquet", "c")
    with pytest.raises(
        ProfileError, match=r"r\.parquet, column 'scenario': has no scenario 'less'"
    ):
        pick_scenario({"more": profiles}, "less")
    assert pick_scenario({"more": profiles}, None)[0] == "more"


def test_the_projector_only_evaluates_hand_built_records() -> None:
    """No roadmap, catalog or workload table: a fleet of 8 h100 (usable 2.8475e12 B/s, bf16
    692.65e12 FLOP/s), one decode workload of 14e9 FLOP and 0.9375e9 B per token (AI 14.93,
    memory-bound) demanding 12,000 tokens/s. Alone in its pool it gets the whole pool:
    8 x 2.8475e12 / 0.9375e9 = 24,298.7 tokens/s, headroom 2.0249."""
    fleet = handmade.fleet([[8, 8, 8]], ["h100"])
    ceilings = handmade.ceilings()
    placement = Placement(
        pool_index=np.array([0]),
        phase_index=np.array([0]),
        generation_index=np.array([0]),
        served_from=np.array([0]),
        start_index=np.array([0]),
        demand=np.full((1, 3), 12_000.0),
    )
    figures = Figures(np.array([14e9]), np.array([0.9375e9]), np.array(["bf16"]), np.zeros(1))
    projector = Projector(fleet, ceilings, placement, figures, np.ones(1))
    assert projector.share.tolist() == [1.0]
    assert projector.full_pool_supply().tolist() == pytest.approx([8 * handmade.BW / 0.9375e9])
    shared = share_of_pools(
        pd.DataFrame({"pool": ["h100"], "demand_units_per_s": [12_000.0], "pool_share": [None]}),
        projector,
    )
    outcome = shared.evaluate(figures)
    assert outcome.headroom[0].tolist() == pytest.approx([8 * handmade.BW / 0.9375e9 / 12_000] * 3)
    assert outcome.memory_bound.all()
    assert outcome.starve_index.tolist() == [NEVER]
    # A variant with 4x the bytes per token (a quarter of the supply) starves from month 0.
    heavier = Figures(
        figures.flops_per_unit, 4 * figures.bytes_per_unit, figures.precision, np.zeros(1)
    )
    assert shared.evaluate(heavier).starve_index.tolist() == [0]
