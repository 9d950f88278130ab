"""`memwall rank` and `memwall whatif` end to end, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from hardware_profiles.examples import example_roadmap
from tasks.analysis.workload.examples import example_workloads
from tests.cli.test_cli import memwall
from tests.pdf import pdf_text

KEYS = {
    "workload_id",
    "rank",
    "starve_month",
    "starve_month_p10",
    "starve_month_p90",
    "bound",
    "utilization_now",
    "min_headroom",
    "best_mitigation",
    "months_gained",
    "served_from",
    "wall",
    "wall_month",
    "wall_month_p10",
    "wall_month_p90",
    "devices_per_replica",
    "max_batch",
    "served_batch",
    "wall_remedy",
    "replica_layout",
    "tpot_under_load_s",
    "output_tokens_per_s_under_load",
    "step_time_s",
    "engine_generation",
    "expert_share",
    "expert_share_source",
}


def _one_error(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("memwall: error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


def test_help_lists_the_options(tmp_path: Path) -> None:
    for command, options in (
        ("rank", ("--workloads", "--roadmap", "--catalog", "--measurements", "--start", "--json")),
        ("whatif", ("--workloads", "--roadmap", "--out", "--horizon-months")),
    ):
        result = memwall([command, "--help"], None, tmp_path)
        assert result.returncode == 0
        for option in options:
            assert option in result.stdout


def test_rank_json_on_the_examples(tmp_path: Path) -> None:
    result = memwall(["rank", "--start", "2026-11", "--json"], None, tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["rank"] for r in rows] == list(range(1, len(example_workloads()) + 1))
    assert all(set(r) == KEYS for r in rows)
    assert {r["workload_id"] for r in rows} == set(example_workloads()["workload_id"])
    first = rows[0]
    assert first["starve_month"] is None or len(first["starve_month"]) == 7


def test_rank_table_names_the_workloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    result = memwall(["rank", "--start", "2026-11", "--horizon-months", "6"], None, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Chat assistant" in result.stdout and "before 2027-05" in result.stdout


def _scenarios(tmp_path: Path) -> Path:
    base = example_roadmap()
    more = base[base["pool"] == "edge"].copy()
    more["effective_date"] = pd.Timestamp("2027-01-01").date()
    more["count_delta"] = 64
    more["scenario"] = "more-edge"
    later = more.copy()
    later["count_delta"] = 0
    later["scenario"] = "baseline"
    roadmap = pd.concat([base.assign(scenario=None), later, more], ignore_index=True)
    path = tmp_path / "scenarios.parquet"
    roadmap.to_parquet(path)
    return path


def test_whatif_writes_a_comparison_pdf(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = memwall(
        ["whatif", "--roadmap", str(_scenarios(tmp_path)), "--start", "2026-11", "--out", str(out)],
        None,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    pdf = Path(result.stdout.strip().splitlines()[-1])
    assert pdf.is_file() and pdf.parent == out
    text = pdf_text(pdf)
    assert "more-edge" in text and "baseline" in text
    assert "agent-8b-decode" in text  # rescued by more edge hardware


def _bad(tmp_path: Path, how: str) -> tuple[list[str], str]:
    if how == "unknown accelerator":
        roadmap = example_roadmap()
        roadmap.loc[2, "accelerator_id"] = "nvidia-x9000"
        path = tmp_path / "roadmap.parquet"
        roadmap.to_parquet(path)
        return ["--roadmap", str(path)], (
            f"{path}, row 3, column 'accelerator_id': unknown accelerator 'nvidia-x9000'"
        )
    if how == "empty workloads":
        path = tmp_path / "workloads.parquet"
        example_workloads().head(0).to_parquet(path)
        return ["--workloads", str(path)], f"{path}: has no workloads"
    if how == "horizon 0":
        return ["--horizon-months", "0"], "a horizon of 0 months is out of range; valid: 1 to 120"
    if how == "horizon 1000":
        return ["--horizon-months", "1000"], "a horizon of 1000 months is out of range"
    assert how == "bad start"
    return ["--start", "2027-13"], "--start must be a month as YYYY-MM"


BAD = [
    "unknown accelerator",
    "empty workloads",
    "horizon 0",
    "horizon 1000",
    "bad start",
]


@pytest.mark.parametrize("how", BAD)
@pytest.mark.parametrize("command", ["rank", "whatif"])
def test_bad_input_is_one_line_exit_2_and_no_pdf(tmp_path: Path, command: str, how: str) -> None:
    args, expected = _bad(tmp_path, how)
    out = tmp_path / "out"
    extra = ["--out", str(out)] if command == "whatif" else []
    result = memwall([command, "--start", "2026-11", *args, *extra], None, tmp_path)
    assert result.returncode == 2, result.stderr
    assert expected in _one_error(result.stderr)
    assert not out.exists()
    assert result.stdout == ""


def test_a_pool_whose_hardware_arrives_later_is_served_from_then(tmp_path: Path) -> None:
    roadmap = example_roadmap()
    roadmap.loc[roadmap["pool"] == "edge", "effective_date"] = pd.Timestamp("2027-06-01").date()
    path = tmp_path / "roadmap.parquet"
    roadmap.to_parquet(path)
    result = memwall(
        ["rank", "--start", "2026-11", "--json", "--roadmap", str(path)], None, tmp_path
    )
    assert result.returncode == 0, result.stderr
    rows = {r["workload_id"]: r for r in json.loads(result.stdout)}
    assert rows["agent-8b-decode"]["served_from"] == "2027-06"  # the edge pool's workload
    assert rows["chat-70b-decode"]["served_from"] == "2026-11"


def test_measured_efficiency_replaces_the_default(tmp_path: Path) -> None:
    # A decode-shaped workload probe on H100s reached a fifth of their spec bandwidth: every
    # decode workload on the inference pool (all H100 today) has less headroom than on the
    # default fitted on published runs (about 0.4).
    from hardware_profiles.parquet import write_table
    from hardware_profiles.schema import MEASUREMENTS

    row = {
        "run_id": "r",
        "measured_at": pd.Timestamp("2026-11-01", tz="UTC"),
        "host": "h",
        "device_index": 0,
        "platform": "gpu",
        "device_kind": "NVIDIA H100 80GB HBM3",
        "accelerator_id": "nvidia-h100-sxm",
        "probe": "workload-decode",
        "dtype": "bfloat16",
        "working_set_bytes": 1,
        "repetitions": 5,
        "best": 0.68e12,
        "median": 0.67e12,
        "p10": 0.66e12,
        "p90": 0.68e12,
        "cv": 0.01,
        "unit": "bytes_per_s",
        "spec": 3.35e12,
        "efficiency": 0.2,
        "status": "ok",
        "detail": "",
        "software": "",
    }
    path = write_table(pd.DataFrame([row]), tmp_path / "m.parquet", MEASUREMENTS)
    args = ["rank", "--start", "2026-11", "--json"]
    default = {r["workload_id"]: r for r in json.loads(memwall(args, None, tmp_path).stdout)}
    measured = memwall([*args, "--measurements", str(path)], None, tmp_path)
    assert measured.returncode == 0, measured.stderr
    rows = {r["workload_id"]: r for r in json.loads(measured.stdout)}
    chat = "chat-70b-decode"
    assert rows[chat]["min_headroom"] < 0.9 * default[chat]["min_headroom"]
