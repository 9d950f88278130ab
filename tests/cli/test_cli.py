"""`memwall` end to end, as a user runs it: a subprocess, its exit code, its output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from hardware_profiles.examples import example_roadmap
from tasks.analysis.workload.examples import example_workloads
from tests.pdf import pdf_text


def memwall(args: list[str], api_url: str | None, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
        check=False,
    )


def test_help_explains_the_commands(tmp_path: Path) -> None:
    result = memwall(["--help"], None, tmp_path)
    assert result.returncode == 0
    assert "audit" in result.stdout
    audit_help = memwall(["audit", "--help"], None, tmp_path)
    for option in ("--workloads", "--roadmap", "--catalog", "--out", "--quick"):
        assert option in audit_help.stdout


@pytest.mark.slow
def test_audit_prints_the_pdf_path_last(prefect_api_url: str, tmp_path: Path) -> None:
    result = memwall(
        ["audit", "--quick", "--out", str(tmp_path / "out")], prefect_api_url, tmp_path
    )
    assert result.returncode == 0, result.stderr
    pdf = Path(result.stdout.strip().splitlines()[-1])
    assert pdf.is_file() and pdf.suffix == ".pdf"
    assert "Chat assistant" in pdf_text(pdf)


def _bad_workloads(tmp_path: Path, how: str) -> Path:
    frame = example_workloads()
    if how == "missing column":
        frame = frame.drop(columns=["demand_units_per_s"])
    elif how == "wrong type":
        frame["bytes_per_unit"] = frame["bytes_per_unit"].astype(str)
    elif how == "negative demand":
        frame.loc[1, "demand_units_per_s"] = -20.0
    path = tmp_path / "workloads.parquet"
    frame.to_parquet(path)
    return path


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("missing column", "column 'demand_units_per_s': missing required column"),
        ("wrong type", "column 'bytes_per_unit': must be a number"),
        ("negative demand", "row 2, column 'demand_units_per_s': must be > 0, got -20.0"),
    ],
)
def test_bad_workloads_exit_non_zero_with_one_line_and_no_pdf(
    prefect_api_url: str, tmp_path: Path, how: str, expected: str
) -> None:
    path = _bad_workloads(tmp_path, how)
    out = tmp_path / "out"
    result = memwall(
        ["audit", "--quick", "--workloads", str(path), "--out", str(out)], prefect_api_url, tmp_path
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("memwall: error:")]
    assert len(errors) == 1, result.stderr
    assert str(path) in errors[0] and expected in errors[0]
    assert "Traceback" not in result.stderr
    assert not out.exists() or not any(out.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["workloads.parquet"] + (
        ["out"] if out.exists() else []
    )


def test_bad_roadmap_names_its_row(prefect_api_url: str, tmp_path: Path) -> None:
    roadmap = example_roadmap()
    roadmap.loc[4, "accelerator_id"] = "nvidia-x9000"
    path = tmp_path / "roadmap.parquet"
    roadmap.to_parquet(path)
    result = memwall(
        ["audit", "--quick", "--roadmap", str(path), "--out", str(tmp_path / "o")],
        prefect_api_url,
        tmp_path,
    )
    assert result.returncode == 2
    assert "row 5, column 'accelerator_id': unknown accelerator 'nvidia-x9000'" in result.stderr
    assert not (tmp_path / "o").exists()


def test_missing_input_file(prefect_api_url: str, tmp_path: Path) -> None:
    result = memwall(
        ["audit", "--workloads", str(tmp_path / "nope.parquet")], prefect_api_url, tmp_path
    )
    assert result.returncode == 2
    assert "nope.parquet: no such workloads file" in result.stderr


def test_pdf_is_unaffected_by_reading_example_frames(tmp_path: Path) -> None:
    # The examples are plain frames; writing them with pandas gives files memwall accepts.
    path = tmp_path / "w.parquet"
    example_workloads().to_parquet(path)
    assert pd.read_parquet(path).shape[0] == len(example_workloads())
