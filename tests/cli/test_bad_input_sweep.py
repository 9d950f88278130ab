"""Every reader and option, tried with one thing broken beside a valid control.

Each case is a command that succeeds (the control) and the same command with one input
broken: the broken one must exit 2 with exactly one ``memwall: error:`` line that names what
is wrong (the file and its row and column, or the option), no traceback, and nothing written
where it was asked to write. The commands run in this process through the console script's
own entry point (``flows.cli.main``), which is where errors become exit codes.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.cli import main
from hardware_profiles.catalog import builtin_catalog
from hardware_profiles.examples import example_roadmap
from hardware_profiles.parquet import write_table
from hardware_profiles.schema import CATALOG, ROADMAP, WORKLOADS
from tasks.analysis.workload.examples import example_workloads
from tests.analysis.workload.test_presets import LLAMA_31_8B_CONFIG

# Writes: (the file's name, a frame or a text, and the table it is written as, if any).
Files = dict[str, tuple[object, object | None]]


@dataclass(frozen=True)
class Case:
    name: str
    command: list[str]  # with {name} placeholders for the files below
    good: Files
    bad: Files
    says: str
    writes: str | None = None  # a file the command would write: absent after a refusal


def _changed(frame: pd.DataFrame, change: dict[str, float | str]) -> pd.DataFrame:
    """``frame`` with its first row's cells changed."""
    for column, value in change.items():
        frame.loc[0, column] = value
    return frame


def _workloads(**change: float | str) -> pd.DataFrame:
    return _changed(example_workloads(), change)


def _raw(frame: pd.DataFrame) -> pa.Table:
    """Written without memwall's checks, as another tool would write it."""
    return pa.Table.from_pandas(frame, preserve_index=False)


W = "w.parquet"
R = "r.parquet"
C = "c.parquet"
J = "my-model/config.json"
LIST = ["workloads", "list", "--workloads", "{w.parquet}", "--json"]
SHOW = ["roadmap", "show", "--roadmap", "{r.parquet}", "--start", "2027-01"]
CATALOG_LIST = ["catalog", "list", "--catalog", "{c.parquet}", "--json"]
ESTIMATE = ["workloads", "estimate", "--config", "{my-model/config.json}", "--json"]
PREDICT = ["predict", "--preset", "llama-3.1-70b", "--json"]
GOOD_W: Files = {W: (example_workloads(), WORKLOADS)}
GOOD_R: Files = {R: (example_roadmap(), ROADMAP)}
GOOD_C: Files = {C: (builtin_catalog(), CATALOG)}
GOOD_J: Files = {J: (json.dumps(LLAMA_31_8B_CONFIG), None)}


def _catalog(**change: float | str) -> pd.DataFrame:
    return _changed(builtin_catalog(), change)


def _config(**change: object) -> str:
    return json.dumps({**LLAMA_31_8B_CONFIG, **change})


def _roadmap_retiring_too_many() -> pd.DataFrame:
    frame = example_roadmap()
    extra = frame.iloc[[0]].assign(count_delta=-10_000_000)
    return pd.concat([frame, extra], ignore_index=True)


CASES = [
    # The workloads file.
    Case("negative demand", LIST, GOOD_W, {W: (_raw(_workloads(demand_units_per_s=-1.0)), None)},
         "row 1, column 'demand_units_per_s': must be > 0"),
    Case("unknown phase", LIST, GOOD_W, {W: (_raw(_workloads(phase="serving")), None)},
         "row 1, column 'phase'"),
    Case("missing column", LIST, GOOD_W,
         {W: (_raw(example_workloads().drop(columns="pool")), None)},
         "column 'pool': missing required column(s) pool"),
    Case("unknown column", LIST, GOOD_W,
         {W: (_raw(example_workloads().assign(colour="red")), None)},
         "column 'colour': unknown column(s) colour; valid:"),
    Case("column twice", LIST, GOOD_W,
         {W: (_raw(example_workloads()).append_column("pool", _raw(example_workloads())
                                                      .column("pool")), None)},
         "column 'pool': has the column 'pool' 2 times"),
    Case("duplicate id", LIST, GOOD_W,
         {W: (_raw(_workloads(workload_id=str(example_workloads()["workload_id"].iloc[1]))),
              None)},
         "row 2, column 'workload_id': duplicate workload_id"),
    Case("pool given away 3.6 times", LIST, GOOD_W,
         {W: (_raw(example_workloads().head(4).assign(pool="inference", pool_share=0.9)), None)},
         "column 'pool_share': pool_share of pool 'inference' adds up to 3.6"),
    Case("not a parquet file", LIST, GOOD_W, {W: ("a,b\n1,2\n", None)},
         "is not a readable Parquet file"),
    Case("a roadmap where workloads go", LIST, GOOD_W, {W: (example_roadmap(), ROADMAP)},
         "is a 'roadmap' table, but a 'workloads' table was expected"),
    Case("pool without hardware", ["rank", "--workloads", "{w.parquet}", "--start", "2027-01"],
         GOOD_W, {W: (_raw(_workloads(pool="nowhere")), None)},
         "row 1, column 'pool': pool 'nowhere' has no hardware in the roadmap"),
    # The roadmap file.
    Case("fractional count", SHOW, GOOD_R,
         {R: (_raw(example_roadmap().assign(count_delta=1.5)), None)},
         "row 1, column 'count_delta'"),
    Case("unknown accelerator", SHOW, GOOD_R,
         {R: (_raw(example_roadmap().assign(accelerator_id="nvidia-h9000")), None)},
         "nvidia-h9000"),
    Case("retiring more than held", SHOW, GOOD_R,
         {R: (_raw(_roadmap_retiring_too_many()), None)}, "column 'count_delta': retires more"),
    # The catalog file.
    Case("negative bandwidth", CATALOG_LIST, GOOD_C,
         {C: (_raw(_catalog(mem_bandwidth_bytes_per_s=-1.0)), None)},
         "row 1, column 'mem_bandwidth_bytes_per_s'"),
    Case("duplicate accelerator", CATALOG_LIST, GOOD_C,
         {C: (_raw(_catalog(accelerator_id=str(builtin_catalog()["accelerator_id"].iloc[1]))),
              None)},
         "row 2, column 'accelerator_id': duplicate accelerator_id"),
    # A Hugging Face config.json.
    Case("heads that do not divide", ESTIMATE, GOOD_J, {J: (_config(hidden_size=4095), None)},
         "column 'num_attention_heads': num_attention_heads 32 does not divide hidden_size 4095"),
    Case("KV heads that do not divide", ESTIMATE, GOOD_J,
         {J: (_config(num_key_value_heads=7), None)}, "column 'num_key_value_heads'"),
    Case("no layers", ESTIMATE, GOOD_J, {J: (_config(num_hidden_layers=0), None)},
         "column 'num_hidden_layers': num_hidden_layers must be a whole number of at least 1"),
    Case("not JSON", ESTIMATE, GOOD_J, {J: ("{not json", None)}, "is not a readable JSON file"),
    # Options.
    Case("tensor parallel over 3", [*PREDICT, "--devices", "3"], {}, {},
         "tensor-parallel device counts: 1, 2, 4, 8, 16, 32, 64"),
    Case("unknown accelerator option", [*PREDICT, "--accelerator", "nvidia-h9000"], {}, {},
         "nvidia-h9000"),
    Case("unknown preset", ["predict", "--preset", "llama-9", "--json"], {}, {}, "llama-9"),
    Case("a month that is not one", ["rank", "--start", "2027-13"], {}, {},
         "--start must be a month as YYYY-MM"),
    Case("a horizon out of range", ["rank", "--start", "2027-01", "--horizon-months", "0"], {}, {},
         "valid: 1 to 120"),
    Case("an efficiency above 1", ["rank", "--start", "2027-01", "--bandwidth-efficiency", "1.5"],
         {}, {}, "bandwidth"),
    Case("an unknown scenario", ["rank", "--start", "2027-01", "--scenario", "nope"], {}, {},
         "has no scenario 'nope'"),
    # A file written by the command: nothing half-written when the row is refused.
    Case("add a workload with a negative demand",
         ["workloads", "add", "--preset", "llama-3.1-8b", "--id", "n", "--owner", "o",
          "--pool", "inference", "--demand", "{demand}", "--to", "{out/w.parquet}"], {}, {},
         "--demand must be > 0, got -10", writes="out/w.parquet"),
]  # fmt: skip
# The control of an option case: the same command with the broken option taken out.
CONTROLS = {
    "tensor parallel over 3": [*PREDICT, "--devices", "8"],
    "unknown accelerator option": PREDICT,
    "unknown preset": ["predict", "--preset", "llama-3.1-8b", "--json"],
    "a month that is not one": ["rank", "--start", "2027-12"],
    "a horizon out of range": ["rank", "--start", "2027-01", "--horizon-months", "6"],
    "an efficiency above 1": ["rank", "--start", "2027-01", "--bandwidth-efficiency", "0.9"],
    "an unknown scenario": ["rank", "--start", "2027-01", "--scenario", "baseline"],
}
VALUES = {"good": {"demand": "10"}, "bad": {"demand": "-10"}}


def _write(folder: Path, files: Files) -> None:
    for name, (content, table) in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, pa.Table):
            pq.write_table(content, path)
        elif isinstance(content, pd.DataFrame) and table is not None:
            write_table(content, path, table)  # type: ignore[arg-type]
        else:
            path.write_text(str(content))


def _argv(command: list[str], folder: Path, values: dict[str, str]) -> list[str]:
    out = []
    for arg in command:
        if arg.startswith("{") and arg.endswith("}"):
            key = arg[1:-1]
            arg = values[key] if key in values else str(folder / key)
        out.append(arg)
    return out


def _run(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["memwall", *argv])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_one_broken_input_is_one_line_beside_a_working_control(
    case: Case,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    good, bad = tmp_path / "good", tmp_path / "bad"
    _write(good, case.good)
    _write(bad, {**case.good, **case.bad})
    control = CONTROLS.get(case.name, case.command)
    code, err = _run(_argv(control, good, VALUES["good"]), monkeypatch, capsys)
    assert code == 0, err
    code, err = _run(_argv(case.command, bad, VALUES["bad"]), monkeypatch, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("memwall: error:")]
    assert len(errors) == 1, err
    assert case.says in errors[0], err
    assert len(err.strip().splitlines()) == 1, err
    if case.writes is not None:
        assert (good / case.writes).exists()
        assert not (bad / case.writes).exists()
        assert not any(p.name.endswith(".tmp") for p in bad.rglob("*"))


def test_the_sweep_tries_every_reader_and_some_options() -> None:
    """What the sweep covers, so that a reader dropped from it is noticed."""
    commands = {" ".join(c.command[:2]) for c in CASES}
    assert {
        "workloads list",
        "roadmap show",
        "catalog list",
        "workloads estimate",
        "workloads add",
    } <= commands
    assert {c.command[0] for c in CASES} >= {"predict", "rank"}
    assert len(CASES) >= 25
