"""The built-in examples: workloads the model derives, a roadmap a planner would recognise."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.errors import ProfileError
from hardware_profiles.examples import example_roadmap, example_scenarios
from hardware_profiles.parquet import read_table, write_table
from hardware_profiles.roadmaps import (
    BASELINE,
    fleet_by_month,
    pick_scenario,
    scenario_names,
    split_scenarios,
)
from hardware_profiles.schema import ROADMAP, Profiles
from tasks.analysis.workload.examples import example_workloads
from tasks.analysis.workload.presets import preset
from tasks.analysis.workload.workload_model import estimate
from tasks.profiles import check_consistent

TODAY = dt.date(2026, 11, 23)


def test_workload_ids_are_stable() -> None:
    assert list(example_workloads()["workload_id"]) == [
        "chat-70b-decode",
        "agent-8b-decode",
        "mixtral-decode",
        "rag-8b-prefill",
        "pretrain-8b",
    ]


def test_example_figures_come_from_the_workload_model() -> None:
    rows: list[dict[str, Any]] = example_workloads().to_dict("records")  # type: ignore[assignment]
    for row in rows:
        result = estimate(
            preset(row["model_preset"]),
            phase=row["phase"],
            batch=int(row["batch"]),
            context=int(row["context_tokens"]),
            weights=row["weight_precision"],
            kv=row["kv_precision"],
            activations=row["precision"],
        )
        assert row["flops_per_unit"] == result.flops_per_unit
        assert row["bytes_per_unit"] == result.bytes_per_unit
        assert row["memory_footprint_bytes"] == result.memory_footprint_bytes


def test_chat_70b_decode_by_hand() -> None:
    chat = example_workloads().set_index("workload_id").loc["chat-70b-decode"]
    # Per token at batch 32, context 4096, bf16: weights 2·(70.55e9 − 1.05e9 embedding)/32
    # = 4.34e9 bytes, plus the KV cache 4096 · 327,680 = 1.34e9 bytes.
    assert chat["bytes_per_unit"] == pytest.approx(2 * 69.5e9 / 32 + 4096 * 327_680, rel=0.01)
    # FLOPs 2·69.5e9 (LM head in) + 4·80·4096·64·128 = 139e9 + 10.7e9.
    assert chat["flops_per_unit"] == pytest.approx(2 * 69.5e9 + 4 * 80 * 4096 * 64 * 128, rel=0.01)


def test_roadmap_is_three_pools_b300_and_rubin_arriving_inside_the_horizon() -> None:
    roadmap = example_roadmap()
    assert set(roadmap["pool"]) == {"inference", "training", "edge"}
    today = fleet_by_month(roadmap, TODAY, 1)
    assert set(today["accelerator_id"]) >= {"nvidia-h100-sxm"}
    assert not {"nvidia-b300", "nvidia-rubin"} & set(today["accelerator_id"])
    # The default horizon: 18 months from 2026-11, so up to 2028-04.
    horizon_end = dt.date(2028, 5, 1)
    buys = roadmap[(roadmap["count_delta"] > 0) & (roadmap["effective_date"] > TODAY)]
    inside = buys[buys["effective_date"] < horizon_end]
    assert {"nvidia-b300", "nvidia-rubin", "nvidia-h200-sxm"} == set(inside["accelerator_id"])
    # One Vera Rubin NVL72 rack is 72 GPUs.
    assert inside.loc[inside["accelerator_id"] == "nvidia-rubin", "count_delta"].tolist() == [72]
    retirements = roadmap[roadmap["count_delta"] < 0]
    assert len(retirements) >= 2 and retirements["unit_cost_usd"].isna().all()
    assert (roadmap.loc[roadmap["count_delta"] > 0, "unit_cost_usd"] > 0).all()


def test_fleet_by_month_counts_changes_and_spend() -> None:
    fleet = fleet_by_month(example_roadmap(), dt.date(2027, 1, 15), 12)
    inference = {
        (r["month"], r["accelerator_id"]): r
        for r in fleet[fleet["pool"] == "inference"].to_dict("records")
    }
    # February 2027: 128 B300 arrive at 50,000 USD each = 6,400,000 USD.
    feb = inference[(dt.date(2027, 2, 1), "nvidia-b300")]
    assert (feb["count"], feb["delta"], feb["spend_usd"]) == (128, 128, 128 * 50_000.0)
    # September 2027: one Rubin NVL72, 72 x 65,000 USD = 4,680,000 USD.
    september = inference[(dt.date(2027, 9, 1), "nvidia-rubin")]
    assert (september["count"], september["delta"], september["spend_usd"]) == (72, 72, 4_680_000)
    # October 2027: half the 256 H100s retire.
    october = inference[(dt.date(2027, 10, 1), "nvidia-h100-sxm")]
    assert (october["count"], october["delta"], october["spend_usd"]) == (128, -128, 0.0)


def test_example_profiles_are_consistent_with_the_catalog() -> None:
    for roadmap in split_scenarios(example_scenarios()).values():
        check_consistent(Profiles(example_workloads(), roadmap, builtin_catalog(), "w", "r", "c"))


def test_scenarios_share_the_base_plan() -> None:
    scenarios = example_scenarios()
    assert scenario_names(scenarios) == [BASELINE, "b300-edge", "rubin-inference"]
    split = split_scenarios(scenarios)
    assert len(split[BASELINE]) == len(example_roadmap())
    rubin = split["rubin-inference"]
    assert len(rubin) == len(example_roadmap()) + 1
    assert (rubin.iloc[-1]["accelerator_id"], rubin.iloc[-1]["count_delta"]) == ("nvidia-rubin", 72)
    b300 = split["b300-edge"].iloc[-1]
    assert (b300["pool"], b300["accelerator_id"], b300["count_delta"]) == (
        "edge",
        "nvidia-b300",
        32,
    )
    assert split_scenarios(example_roadmap()).keys() == {BASELINE}


def test_unknown_scenario_lists_the_valid_ones() -> None:
    with pytest.raises(ProfileError, match="has no scenario 'h300'; its scenarios are baseline"):
        pick_scenario(example_scenarios(), "h300", "plans.parquet")


def test_scenario_roadmap_round_trips_through_parquet(tmp_path: Path) -> None:
    path = write_table(example_scenarios(), tmp_path / "s.parquet", ROADMAP)
    assert read_table(path, ROADMAP)["scenario"].notna().sum() == 2
