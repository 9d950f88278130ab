"""`memwall probe` end to end, as a user runs it: a subprocess, its exit code, its output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from hardware_profiles.parquet import read_table, validate_frame
from hardware_profiles.schema import MEASUREMENTS


def memwall(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def test_probe_help_names_its_options(tmp_path: Path) -> None:
    result = memwall(["probe", "--help"], tmp_path)
    assert result.returncode == 0
    for option in ("--quick", "--sustained", "--json", "--out", "--catalog"):
        assert option in result.stdout
    assert "probe" in memwall(["--help"], tmp_path).stdout


@pytest.mark.slow
@pytest.mark.integration
def test_quick_json_rows_validate_and_out_writes_the_same_rows(tmp_path: Path) -> None:
    out = tmp_path / "results" / "measurements.parquet"
    args = ["probe", "--quick", "--sustained", "0.3", "--json", "--out", str(out)]
    result = memwall(args, tmp_path)
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert records and all(list(r) == MEASUREMENTS.columns for r in records)
    frame = pd.DataFrame(records)
    frame["measured_at"] = pd.to_datetime(frame["measured_at"], utc=True)
    frame["accelerator_id"] = frame["accelerator_id"].astype("string")
    validate_frame(frame, MEASUREMENTS, "memwall probe --json")
    assert {"copy", "triad", "matmul", "triad-sustained", "matmul-sustained"} <= set(frame["probe"])
    assert set(frame["status"]) <= {"ok", "unstable", "waived"}
    written = read_table(out, MEASUREMENTS)
    assert list(written["probe"]) == list(frame["probe"])
    assert [p.name for p in out.parent.iterdir()] == ["measurements.parquet"]  # no temp left


def test_out_naming_a_folder_fails_before_probing(tmp_path: Path) -> None:
    folder = tmp_path / "already-a-folder"
    folder.mkdir()
    result = memwall(["probe", "--quick", "--out", str(folder)], tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("memwall: error:")]
    expected = f"memwall: error: {folder}: is a folder; --out names the Parquet file to write"
    assert errors == [expected]
    assert "Traceback" not in result.stderr
    assert list(folder.iterdir()) == []


def test_bad_catalog_is_one_line_naming_the_file(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.parquet"
    pd.DataFrame({"accelerator_id": ["x"]}).to_parquet(catalog)
    out = tmp_path / "m.parquet"
    result = memwall(["probe", "--quick", "--catalog", str(catalog), "--out", str(out)], tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("memwall: error:")]
    assert len(errors) == 1 and str(catalog) in errors[0] and "missing required column" in errors[0]
    assert not out.exists()


def test_negative_sustained_is_refused(tmp_path: Path) -> None:
    result = memwall(["probe", "--sustained", "-1"], tmp_path)
    assert result.returncode == 2
    assert "--sustained" in result.stderr
