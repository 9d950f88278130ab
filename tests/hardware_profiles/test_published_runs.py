"""The published-runs check, and the shipped table: the backtest's ground truth must be well
formed.

Each row is a figure read from a public page; these checks catch a row typed wrong
(a unit not converted, an accelerator the catalog lacks, a duplicated id) before the
backtest fits anything on it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from hardware_profiles.errors import ProfileError
from hardware_profiles.published_runs import (
    COLUMNS,
    builtin_published_runs,
    validate_published_runs,
)
from tasks.analysis.workload.presets import PRESETS

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


ROW: dict[str, str] = {
    "run_id": "r1",
    "model": "Llama-3.1-8B",
    "model_preset": "llama-3.1-8b",
    "hardware": "nvidia-h100-sxm",
    "devices": "1",
    "layout": "tp=1",
    "phase": "decode",
    "batch": "8",
    "input_tokens": "1024",
    "output_tokens": "256",
    "weight_precision": "bf16",
    "kv_precision": "bf16",
    "compute_precision": "bf16",
    "engine": "vLLM",
    "engine_version": "0.6.3",
    "metric": "tpot_s",
    "measured_value": "0.012",
    "source_url": "https://example.org/results",
    "source_location": "table 2",
    "split": "fit",
    "note": "",
}


def _sheet(**second: str) -> pd.DataFrame:
    """Two runs, the second with ``second``'s cells."""
    return pd.DataFrame([ROW, {**ROW, "run_id": "r2", **second}], dtype=str)


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("model", "", "must not be empty"),
        ("devices", "2.5", "'2.5' must be a whole number >= 1"),
        (
            "layout",
            "tp=8",
            "'tp=8' spans pp x tp x dp_attention = 8 devices, but the row's devices is 1",
        ),
        (
            "layout",
            "dp_attention=1,ep=8",
            "'dp_attention=1,ep=8': ep=8 must equal tp x dp_attention = 1",
        ),
        ("layout", "sp=2", "'sp=2' is not a layout axis=degree of a new axis; axes: tp, ep,"),
        ("layout", "tp=1,tp=1", "'tp=1' is not a layout axis=degree of a new axis"),
        ("layout", "tp=0", "'0' must be a whole number >= 1"),
        ("phase", "training", "'training' is not valid; valid: decode, prefill"),
        ("output_tokens", "0", "a decode run must generate at least one token"),
        ("kv_precision", "fp12", "'fp12' is not valid; valid: fp32, tf32, bf16, fp16, fp8"),
        ("metric", "ttft_s", "'ttft_s' measures prefill, but the row's phase is 'decode'"),
        ("measured_value", "inf", "'inf' must be a number > 0"),
        ("source_url", "{here}", "'{here}' is not an http(s) URL"),
        ("split", "test", "'test' is not valid; valid: fit, holdout"),
        ("run_id", "r1", "duplicate run_id 'r1'"),
    ],
)
def test_a_bad_cell_is_one_line_naming_file_row_column_and_what_is_valid(
    column: str, value: str, problem: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        validate_published_runs(_sheet(**{column: value}), "runs.csv")
    message = str(caught.value)
    assert message.startswith(f"runs.csv, row 2, column '{column}': {problem}")
    assert "\n" not in message
    assert (caught.value.row, caught.value.column) == (2, column)


def test_of_several_bad_cells_the_first_from_the_left_is_named() -> None:
    with pytest.raises(ProfileError, match=r"row 2, column 'devices': '0' must be a whole"):
        validate_published_runs(_sheet(devices="0", split="test", note="x"), "runs.csv")


def test_a_run_is_typed_and_unstated_cells_stay_unstated() -> None:
    runs = validate_published_runs(
        _sheet(batch="", output_tokens="", kv_precision="", measured_value=" 1e-2 "), "runs.csv"
    )
    assert list(runs.columns) == list(COLUMNS)
    assert str(runs["devices"].dtype) == "Int64"
    assert runs["measured_value"].tolist() == [0.012, 0.01]
    assert runs["batch"].isna().tolist() == [False, True]
    assert runs["output_tokens"].isna().tolist() == [False, True]
    assert runs["kv_precision"].tolist() == ["bf16", ""]


@pytest.mark.parametrize(
    ("devices", "layout", "read"),
    [
        ("8", "dp_attention=8,ep=8", "dp_attention=8,ep=8"),
        ("8", " tp=8, ep=8 ", "tp=8,ep=8"),
        ("8", "tp=2,pp=4", "tp=2,pp=4"),
        ("16", "tp=8,pp=2", "tp=8,pp=2"),
        ("4", "", ""),
    ],
)
def test_a_layout_that_spans_the_rows_devices_is_read(devices: str, layout: str, read: str) -> None:
    """Attention on tp x dp_attention devices per stage, experts split over those same
    devices (ep = tp x dp_attention), pp stages: 8 = 1 x 8 (ep 8), 8 x 1 (ep 8), 2 x 4,
    8 x 2 = 16; empty: not stated."""
    runs = validate_published_runs(_sheet(devices=devices, layout=layout), "runs.csv")
    assert runs["layout"].tolist() == ["tp=1", read]


# Rows without a layout, each for its reason: the jetstream-pytorch pages do not say how the
# model was split; SGLang-JAX split Qwen3-30B-A3B over the 8 JAX devices of 4 TPU7x chips
# (two per chip), which no layout over the catalog's per-chip devices can state.
UNSTATED_LAYOUT = ("jetstream-pt-", "sgljax-tpu7x4-")


def test_the_shipped_runs_state_their_layout() -> None:
    # Reading them checks each layout against its devices.
    typed = builtin_published_runs()
    unstated = typed.loc[typed["layout"] == "", "run_id"]
    assert unstated.str.startswith(UNSTATED_LAYOUT).all() and len(unstated) <= 6


def test_every_run_names_a_preset_memwall_ships() -> None:
    typed = builtin_published_runs()
    unknown = set(typed["model_preset"]) - set(PRESETS)
    assert not unknown, f"no such preset: {sorted(unknown)}"


# The 2025 MoE families the backtest must see measured at a stated batch.
MOE_2025 = (
    "gpt-oss-120b",
    "llama-4-scout",
    "llama-4-maverick",
    "qwen3-235b-a22b",
    "qwen3-30b-a3b",
    "kimi-k2",
    "deepseek-r1",
    "glm-4.7",
)


@pytest.mark.parametrize("name", MOE_2025)
def test_each_2025_moe_family_has_a_run_with_its_batch(name: str) -> None:
    typed = builtin_published_runs()
    pinned = typed[(typed["model_preset"] == name) & typed["batch"].notna()]
    assert len(pinned) >= 1


_MS = re.compile(r"mean TPOT ([0-9.]+) ms = ([0-9.]+) s")
_MEAN = re.compile(r"(input|output)_tokens = ([0-9]+)/([0-9]+) = [0-9.]+ -> ([0-9]+)")


def test_a_converted_figure_is_the_printed_one_and_the_cells_hold_it() -> None:
    """Where a note gives the conversion, it was done exactly on the printed figure and the
    cells hold its result: SGLang's "Mean TPOT (ms)" 14.31 is 0.01431 s in measured_value, and
    a length is the printed total over the requests, e.g. 297156 input tokens over 1000
    requests = 297.156, rounded 297, in input_tokens."""
    typed = builtin_published_runs()
    converted = 0
    for run in typed.itertuples():
        note = str(run.note)
        for printed, seconds in _MS.findall(note):
            assert float(seconds) == pytest.approx(float(printed) / 1000, rel=1e-12)
            assert run.measured_value == pytest.approx(float(seconds), rel=1e-12)
            converted += 1
        for column, total, requests, rounded in _MEAN.findall(note):
            assert round(int(total) / int(requests)) == int(rounded)
            assert getattr(run, f"{column}_tokens") == int(rounded)
    assert converted >= 20
