"""The device check (benchmarks/device_check.py), as CI runs it: its quick form on this CPU,
producing both files with every figure sourced; and its summary's rules on rows written here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jax
import pytest

from benchmarks.device_report import Reference, figures, targets
from hardware_profiles.parquet import read_table
from hardware_profiles.schema import MEASUREMENTS

ROOT = Path(__file__).resolve().parents[2]


def _row(probe: str, dtype: str, best: float | None, status: str, n: int = 0) -> dict[str, Any]:
    return {
        "probe": probe,
        "dtype": dtype,
        "unit": "flops_per_s" if probe == "matmul" else "bytes_per_s",
        "best": best,
        "median": None if best is None else best * 0.9,
        "cv": None if best is None else 0.02,
        "status": status,
        "source": f"memwall {probe} {dtype} n={n}",
        "spec_reference": Reference(2e12, "catalog spec") if probe != "host-to-device" else None,
        "spec_missing": "the catalog has no figure for a host link",
    }


def test_a_matmul_figure_is_its_largest_size_that_ran_and_each_ratio_is_sourced() -> None:
    rows = [
        _row("triad", "float32", 1.8e12, "ok"),
        _row("matmul", "bfloat16", 4e14, "ok", 4096),
        _row("matmul", "bfloat16", 7e14, "unstable", 8192),
        _row("matmul", "float8_e4m3fn", 9e14, "ok", 4096),
        _row("matmul", "float8_e4m3fn", None, "waived", 8192),
        _row("host-to-device", "float32", 5e10, "ok"),
    ]
    native = {
        ("copy", ""): Reference(2e12, "torch copy_"),
        ("matmul", "bfloat16"): Reference(7.5e14, "torch matmul"),
    }
    found = {f.name: f for f in figures(rows, native)}
    assert found["matmul bfloat16"].value == 7e14 and found["matmul bfloat16"].cv == 0.02
    # A size that was waived does not hide the figure a smaller size gave.
    assert found["matmul float8_e4m3fn"].value == 9e14
    assert found["triad float32"].over(found["triad float32"].native) == pytest.approx(0.9)
    assert found["triad float32"].over(found["triad float32"].spec) == pytest.approx(0.9)
    assert found["matmul float8_e4m3fn"].missing == {
        "native": "no native reference measured at this dtype"
    }
    link = found["host-to-device float32"]
    assert link.missing == {
        "spec": "the catalog has no figure for a host link",
        "native": "no native reference for a host link",
    }
    goals = {t.name: t for t in targets(list(found.values()), 0.2, gpu=True)}
    triad = goals["triad float32 over the native device-to-device copy"]
    assert triad.value == pytest.approx(0.9) and triad.met is True
    gemm = goals["bfloat16 GEMM over the native matmul"]
    assert gemm.met is True and gemm.value == pytest.approx(7 / 7.5)
    assert goals["validate --quick: decode median |measured/predicted - 1|"].met is False


def test_targets_not_measured_say_so() -> None:
    goals = targets([], None, gpu=False)
    assert [t.verdict() for t in goals] == ["not measured"] * 3
    assert all("a GPU target; this run is on a CPU" in t.note for t in goals)


@pytest.mark.slow
def test_the_quick_check_writes_both_files_with_every_figure_sourced(tmp_path: Path) -> None:
    out = tmp_path / "check"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.device_check", str(out), "--quick"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "device-check.json").read_text())
    text = (out / "device-check.md").read_text()
    assert summary["complete"] and summary["form"] == "quick"
    assert summary["imported"] == {"prefect": False, "reportlab": False}
    assert summary["software"].startswith(f"jax {jax.__version__}; jaxlib ")
    assert [d["platform"] for d in summary["discovery"]] == ["cpu"]
    assert not [n for n in summary["notes"] if "broke" in n], summary["notes"]

    found = {f["name"]: f for f in summary["figures"]}
    for name in ("copy float32", "triad float32", "matmul float32", "matmul bfloat16"):
        assert found[name]["status"] in ("ok", "unstable") and found[name]["value"] > 0
    for dtype in ("float16", "float8_e4m3fn", "tfloat32"):
        assert f"matmul {dtype}" in found
    # XLA's CPU backend has no TF32: the sweep says so instead of timing float32 as tf32.
    assert "TF32" in found["matmul tfloat32"]["source"]
    for f in summary["figures"]:
        assert f["source"].strip(), f
        for key in ("spec", "native"):
            reference, missing = f[key], f["missing"].get(key, "")
            assert (reference and reference["value"] > 0 and reference["source"]) or missing, f
    # The CPU's native references, measured in the same run: numpy's copy and float32 matmul.
    assert found["triad float32"]["over_native"] > 0
    assert found["matmul float32"]["over_native"] > 0
    assert {(n["probe"], n["dtype"]) for n in summary["natives"]} >= {
        ("copy", "float32"),
        ("matmul", "float32"),
    }
    validate = summary["validate"]
    assert validate["decode_cases"] >= 1 and validate["median_error"] is not None
    assert len(summary["targets"]) == 3

    # The Markdown holds every figure, each with its numbered sources.
    for i, f in enumerate(summary["figures"], 1):
        assert f"| {i} | {f['name']} |" in text
        assert f"{i}. **{f['name']}**: {f['source']}" in text
    assert len(re.findall(r"^   - (spec|native): ", text, flags=re.M)) == 2 * len(found)
    rows = read_table(out / "measurements.parquet", MEASUREMENTS)
    assert set(rows["software"]) == {summary["software"]}


def test_a_file_where_the_folder_should_be_is_one_line_and_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.device_check", str(blocker)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"device_check: error: {blocker}: is a file; OUT_DIR names a folder"
    ]
