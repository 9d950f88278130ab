"""The shipped published-runs table: the backtest's ground truth must be well formed.

Each row is a figure read from a public page; these checks catch a row typed wrong
(a unit not converted, an accelerator the catalog lacks, a duplicated id) before the
backtest fits anything on it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from hardware_profiles.published_runs import COLUMNS

DATA = Path(__file__).resolve().parents[2] / "hardware_profiles" / "data"
METRICS = {"tpot_s", "output_tokens_per_s", "ttft_s", "prefill_tokens_per_s"}
PRECISIONS = {"fp32", "tf32", "bf16", "fp16", "fp8", "fp6", "fp4", "int8", "int4"}


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    return pd.read_csv(DATA / "published_runs.csv", dtype={"engine_version": str})


def test_has_the_contract_columns_in_order(runs: pd.DataFrame) -> None:
    assert tuple(runs.columns) == COLUMNS


def test_has_at_least_twenty_uniquely_named_runs(runs: pd.DataFrame) -> None:
    assert len(runs) >= 20
    assert runs["run_id"].is_unique


def test_metric_phase_and_value_are_valid(runs: pd.DataFrame) -> None:
    assert set(runs["metric"]) <= METRICS
    assert set(runs["phase"]) <= {"decode", "prefill"}
    assert (runs["measured_value"] > 0).all()
    # A time-to-first-token or prefill rate is a prefill figure; a per-token time is decode.
    prefill_metrics = runs["metric"].isin({"ttft_s", "prefill_tokens_per_s"})
    assert (runs.loc[prefill_metrics, "phase"] == "prefill").all()
    assert (runs.loc[runs["metric"] == "tpot_s", "phase"] == "decode").all()


def test_both_phases_are_covered(runs: pd.DataFrame) -> None:
    assert set(runs["phase"]) == {"decode", "prefill"}


def test_every_accelerator_is_in_the_catalog(runs: pd.DataFrame) -> None:
    catalog = pd.read_csv(DATA / "catalog.csv")
    unknown = set(runs["hardware"]) - set(catalog["accelerator_id"])
    assert not unknown, f"not in catalog.csv: {sorted(unknown)}"


def test_devices_and_shapes_are_positive_where_given(runs: pd.DataFrame) -> None:
    assert (runs["devices"] >= 1).all()
    for column in ("batch", "input_tokens", "output_tokens"):
        given = runs[column].dropna()
        assert (given >= 1).all(), column


def test_precisions_use_the_memwall_names(runs: pd.DataFrame) -> None:
    assert set(runs["weight_precision"]) <= PRECISIONS
    assert set(runs["compute_precision"]) <= PRECISIONS
    # KV precision is left blank where the source does not state it.
    assert set(runs["kv_precision"].dropna()) <= PRECISIONS


def test_split_is_declared_and_both_parts_are_used(runs: pd.DataFrame) -> None:
    assert set(runs["split"]) == {"fit", "holdout"}


def test_every_run_cites_a_public_page_and_a_place_on_it(runs: pd.DataFrame) -> None:
    assert runs["source_url"].str.startswith("https://").all()
    assert (runs["source_location"].str.len() > 0).all()
