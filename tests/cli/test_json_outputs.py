"""Every ``--json`` output is strict JSON: ``null``, never ``NaN`` or ``Infinity``.

The commands are found by walking the CLI's command tree for a ``--json`` option, so a new
command with ``--json`` is covered as soon as it is registered, and this test fails until it
has an entry in ARGUMENTS (the least it needs to run).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from flows.cli import app
from tasks.analysis.workload.examples import example_workloads
from tasks.history import record_run
from tests.tasks.test_history import measurements, ranking

# The least each --json command needs; "{history}" is a history with one recorded run.
ARGUMENTS: dict[str, list[str]] = {
    "probe": ["--quick"],
    "workloads estimate": ["--preset", "llama-3.1-8b", "--phase", "decode"],
    "workloads list": [],
    "catalog list": [],
    "rank": [],
    "history": ["--history", "{history}"],
    "validate": ["--quick"],
    "predict": [
        "--preset",
        "llama-3.1-8b",
        "--phase",
        "decode",
        "--accelerator",
        "nvidia-h100-sxm",
    ],
    "backtest": [],
    "plan training": [
        "--preset",
        "llama-3.1-8b",
        "--devices",
        "8",
        "--global-batch-tokens",
        "64K",
        "--top",
        "2",
    ],
}
SLOW = {"probe", "validate"}
# Commands that need a service to answer, and the test that checks their JSON against one.
ELSEWHERE = {
    "observe": "tests/integration/test_observe_telemetry.py",
    "workloads discover": "tests/integration/test_workloads_discover.py",
}


def json_commands() -> list[str]:
    """Every command path (``workloads list``) whose command has a ``--json`` option."""
    found: list[str] = []

    # Typer carries its own click: groups and options are told apart by what they have.
    def walk(command: Any, path: list[str]) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
        elif any("--json" in getattr(p, "opts", ()) for p in command.params):
            found.append(" ".join(path))

    walk(typer.main.get_command(app), [])
    return sorted(found)


def _no_constants(name: str) -> object:
    raise AssertionError(f"not strict JSON: {name}")


def test_every_json_command_has_arguments_here() -> None:
    missing = [c for c in json_commands() if c not in ARGUMENTS and c not in ELSEWHERE]
    assert not missing, (
        f"memwall {', '.join(missing)} has --json but no entry in ARGUMENTS of {__file__}: "
        "add the least arguments it needs to run"
    )
    assert set(ARGUMENTS) <= set(json_commands()), "an entry for a command that has no --json"


@pytest.fixture
def history(tmp_path: Path) -> Path:
    at = dt.datetime(2026, 1, 5, 6, tzinfo=dt.UTC)
    rows = measurements("r1", at, 3e12)
    record_run(str(tmp_path / "history"), "r1", rows, ranking(), at)
    return tmp_path / "history"


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(c, marks=pytest.mark.slow) if c in SLOW else c
        for c in json_commands()
        if c in ARGUMENTS
    ],
)
def test_json_output_is_strict(command: str, history: Path) -> None:
    args = [*command.split(), *(a.format(history=history) for a in ARGUMENTS[command]), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, f"memwall {' '.join(args)}: {result.output}{result.exception}"
    parsed = json.loads(result.stdout, parse_constant=_no_constants)
    assert parsed, f"memwall {' '.join(args)} printed nothing"


def test_rank_refuses_a_nan_demand_instead_of_printing_nan(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = pa.Table.from_pandas(example_workloads(), preserve_index=False)
    values = data.column("demand_units_per_s").to_pylist()
    values[0] = math.nan
    data = data.set_column(
        data.column_names.index("demand_units_per_s"),
        "demand_units_per_s",
        pa.array(values, pa.float64()),
    )
    path = tmp_path / "w.parquet"
    pq.write_table(data, path)
    result = CliRunner().invoke(app, ["rank", "--workloads", str(path), "--json"])
    assert result.exit_code != 0 and result.stdout == ""
    assert "row 1, column 'demand_units_per_s': must be a finite number" in str(result.exception)
