"""The probe path runs on a GPU host's own Python: ``memwall probe``, ``memwall validate`` and
discovery import JAX, NumPy and what the measurements schema needs (pandas, pyarrow), and
nothing of Prefect or reportlab, which such a host need not have (README: "On a GPU host's own
JAX"). Each check runs in a fresh interpreter, so what another test imported does not count."""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NEVER = ("prefect", "reportlab")

# Runs the memwall command line with the arguments given, and at exit writes the top-level
# names of every module the command imported to $MEMWALL_MODULES_OUT.
_DRIVER = """
import atexit, json, os, sys

def report():
    with open(os.environ["MEMWALL_MODULES_OUT"], "w") as out:
        json.dump(sorted({name.split(".")[0] for name in sys.modules}), out)

atexit.register(report)
sys.argv = ["memwall", *sys.argv[1:]]
from flows.cli import main
main()
"""


def _imported_by(tmp_path: Path, *command: str) -> set[str]:
    out = tmp_path / "modules.json"
    result = subprocess.run(
        [sys.executable, "-c", _DRIVER, *command],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "MEMWALL_MODULES_OUT": str(out)},
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return set(json.loads(out.read_text()))


def test_the_probe_path_modules_import_no_prefect_or_reportlab() -> None:
    names = [
        "tasks.discovery",
        "tasks.nvml",
        "flows.cli",
        "flows.cli_probe",
        "flows.cli_validate",
        "reports.validation_text",
        *(f"tasks.probes.{m.name}" for m in pkgutil.iter_modules([str(ROOT / "tasks/probes")])),
    ]
    script = (
        "import importlib, json, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True
    )
    loaded = set(json.loads(result.stdout))
    assert {"jax", "numpy", "pandas", "pyarrow"} <= loaded
    assert not loaded & set(NEVER)


@pytest.mark.slow
def test_memwall_probe_quick_imports_no_prefect_or_reportlab(tmp_path: Path) -> None:
    loaded = _imported_by(tmp_path, "probe", "--quick", "--json", "--out", str(tmp_path / "m.pq"))
    assert "jax" in loaded and (tmp_path / "m.pq").is_file()
    assert not loaded & set(NEVER)


@pytest.mark.slow
def test_memwall_validate_quick_imports_no_prefect_or_reportlab(tmp_path: Path) -> None:
    # One preset keeps it short; the table printed is the one a user sees.
    loaded = _imported_by(tmp_path, "validate", "--quick", "--model", "mistral-7b")
    assert "jax" in loaded and "rich" in loaded
    assert not loaded & set(NEVER)
