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
from hardware_profiles.examples import example_roadmap, example_scenarios
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


def _training(**change: object) -> pd.DataFrame:
    """The examples with the 8B pre-training row laid out as a job on the training pool's 512
    H100s (dp=64,tp=8, 4M tokens of 4,096 a step), then ``change`` in that row."""
    frame = example_workloads()
    row = frame["workload_id"] == "pretrain-8b"
    given: dict[str, object] = {
        "layout": "dp=64,tp=8", "global_batch_tokens": 4 * 2**20, "micro_batch": 1,
        "recompute": "selective", "zero_stage": 1, "optimizer": "adam", **change,
    }  # fmt: skip
    for column, value in given.items():
        frame[column] = pd.Series([value if r else None for r in row], dtype=object)
    return frame


def _raw(frame: pd.DataFrame) -> pa.Table:
    """Written without memwall's checks, as another tool would write it."""
    return pa.Table.from_pandas(frame, preserve_index=False)


W = "w.parquet"
PR = "runs.csv"
TR = "training-runs.csv"
SO = "scale-out.csv"
TRAIN = ["predict", "--preset", "llama-3.1-70b", "--phase", "training", "--devices", "16",
         "--global-batch-tokens", "4M", "--json"]  # fmt: skip
PLAN = ["plan", "training", "--preset", "llama-3.1-70b", "--devices", "64",
        "--global-batch-tokens", "4M", "--json"]  # fmt: skip
ADD_ACCELERATOR = ["catalog", "add", "--id", "x1", "--vendor", "v", "--name", "n", "--source", "s",
                   "--to", "{out/c.parquet}", "--bandwidth-tb-s", "3"]  # fmt: skip
ADD_WORKLOAD = ["workloads", "add", "--preset", "llama-3.1-8b", "--id", "n", "--owner", "o",
                "--pool", "inference", "--demand", "10", "--to", "{out/w.parquet}"]  # fmt: skip
R = "r.parquet"
C = "c.parquet"
J = "my-model/config.json"
LIST = ["workloads", "list", "--workloads", "{w.parquet}", "--json"]
RANK_TRAINING = ["rank", "--workloads", "{w.parquet}", "--start", "2027-01", "--json"]
SHOW = ["roadmap", "show", "--roadmap", "{r.parquet}", "--start", "2027-01"]
CATALOG_LIST = ["catalog", "list", "--catalog", "{c.parquet}", "--json"]
ESTIMATE = ["workloads", "estimate", "--config", "{my-model/config.json}", "--json"]
PREDICT = ["predict", "--preset", "llama-3.1-70b", "--json"]
GOOD_W: Files = {W: (example_workloads(), WORKLOADS)}
GOOD_R: Files = {R: (example_roadmap(), ROADMAP)}
GOOD_C: Files = {C: (builtin_catalog(), CATALOG)}
GOOD_J: Files = {J: (json.dumps(LLAMA_31_8B_CONFIG), None)}


def _csv(demand: str) -> str:
    """One workload as a CSV to import, figures derived from its preset."""
    return (
        "workload_id,name,owner,pool,phase,model_preset,precision,batch,context_tokens,"
        "demand_units_per_s,demand_growth_per_year\n"
        f"q,Q,o,inference,decode,llama-3.1-8b,bf16,8,4096,{demand},0.5\n"
    )


def _catalog(**change: float | str) -> pd.DataFrame:
    return _changed(builtin_catalog(), change)


def _config(**change: object) -> str:
    return json.dumps({**LLAMA_31_8B_CONFIG, **change})


DATA = Path(__file__).resolve().parents[2] / "hardware_profiles" / "data"
RUNS_CSV = (DATA / "published_runs.csv").read_text()
TRAINING_CSV = (DATA / "published_training_runs.csv").read_text()
SCALE_OUT_CSV = (DATA / "scale_out.csv").read_text()


def _first_row(text: str, old: str, new: str) -> str:
    """``text`` (a CSV) with ``old`` replaced by ``new`` in its first data row only."""
    header, first, rest = text.split("\n", 2)
    assert old in first, (old, first)
    return "\n".join([header, first.replace(old, new, 1), rest])


def _roadmap_without_scenarios() -> pd.DataFrame:
    return example_scenarios().assign(scenario=None)


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
    Case("a training job's micro-batch above its global batch", RANK_TRAINING,
         {W: (_training(), WORKLOADS)}, {W: (_raw(_training(micro_batch=4096)), None)},
         "row 5, column 'micro_batch': micro-batch 4096 exceeds the global batch of 1024 "
         "sequences; valid micro-batches: 1, 2, 4, 8, 16"),
    Case("a training job over more devices than its pool holds", RANK_TRAINING,
         {W: (_training(), WORKLOADS)}, {W: (_raw(_training(layout="dp=128,tp=8")), None)},
         "row 5, column 'layout': layout dp=128,tp=8 spans dp·tp·pp·cp = 1024 devices; pool "
         "'training' never holds more than 512 of one model: with tp·pp·cp = 8, valid dp: 1 to "
         "64"),
    Case("a training job whose pipeline does not divide the layers", RANK_TRAINING,
         {W: (_training(), WORKLOADS)}, {W: (_raw(_training(layout="dp=16,tp=8,pp=3")), None)},
         "row 5, column 'layout': pp·vp = 3 does not divide"),
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
    Case("an unknown workload", ["predict", "--workload", "nope", "--json"], {}, {},
         "--workload: unknown workload 'nope'; the workloads are agent-8b-decode, "
         "chat-70b-decode, mixtral-decode, pretrain-8b, rag-8b-prefill"),
    Case("a month that is not one", ["rank", "--start", "2027-13"], {}, {},
         "--start must be a month as YYYY-MM"),
    Case("a horizon out of range", ["rank", "--start", "2027-01", "--horizon-months", "0"], {}, {},
         "valid: 1 to 120"),
    Case("an efficiency above 1", ["rank", "--start", "2027-01", "--bandwidth-efficiency", "1.5"],
         {}, {}, "bandwidth"),
    Case("an unknown scenario", ["rank", "--start", "2027-01", "--scenario", "nope"], {}, {},
         "has no scenario 'nope'"),
    # A measurements file.
    Case("measurements that are not Parquet",
         ["rank", "--start", "2027-01", "--measurements", "{m.parquet}"], {},
         {"m.parquet": ("junk", None)}, "m.parquet: is not a readable Parquet file"),
    # A roadmap for a what-if.
    Case("a what-if roadmap with no scenario",
         ["whatif", "--roadmap", "{r.parquet}", "--start", "2027-01", "--out", "{out}"],
         {R: (example_scenarios(), ROADMAP)}, {R: (_raw(_roadmap_without_scenarios()), None)},
         "column 'scenario': names no scenario to compare with the baseline", writes="out"),
    # The catalog, in the wrong unit: a FLOP/s figure where TFLOPS were asked for.
    Case("a catalog bandwidth in the wrong unit", CATALOG_LIST, GOOD_C,
         {C: (_raw(_catalog(mem_bandwidth_bytes_per_s=3.35e24)), None)},
         "row 1, column 'mem_bandwidth_bytes_per_s': must be > 0 and at most 1e+15 bytes/s"),
    # The published runs, serving and training, and the scale-out network.
    Case("a published run's layout that does not span its devices",
         ["backtest", "--runs", "{runs.csv}", "--json"], {PR: (RUNS_CSV, None)},
         {PR: (_first_row(RUNS_CSV, ",2,tp=2,decode,", ",2,tp=4,decode,"), None)},
         "runs.csv, row 1, column 'layout': 'tp=4' spans"),
    Case("a published run without its columns", ["backtest", "--runs", "{runs.csv}", "--json"],
         {PR: (RUNS_CSV, None)}, {PR: ("a,b\n1,2\n", None)}, "runs.csv: missing column(s)"),
    Case("a training run's layout that does not span its devices",
         ["backtest", "--phase", "training", "--training-runs", "{training-runs.csv}", "--json"],
         {TR: (TRAINING_CSV, None)},
         {TR: (_first_row(TRAINING_CSV, ",64,dp=64,", ",64,dp=32,"), None)},
         "training-runs.csv, row 1, column 'layout': 'dp=32' spans dp·tp·pp·cp = 32 devices"),
    Case("a training run's micro-batch above its global batch",
         ["backtest", "--phase", "training", "--training-runs", "{training-runs.csv}", "--json"],
         {TR: (TRAINING_CSV, None)},
         {TR: (_first_row(TRAINING_CSV, ",3,64,1,8192,", ",3,64,128,8192,"), None)},
         "row 1, column 'micro_batch': micro-batch 128 is larger than the global batch of 64"),
    Case("a negative scale-out network",
         [*TRAIN, "--layout", "dp=2,tp=8", "--scale-out", "{scale-out.csv}"],
         {SO: (SCALE_OUT_CSV, None)}, {SO: (SCALE_OUT_CSV.replace(",25,8,", ",-25,8,", 1), None)},
         "scale-out.csv, row 1, column 'scale_out_gb_s'"),
    # Training options.
    Case("a training layout over the wrong device count", [*TRAIN, "--layout", "dp=3,tp=8"], {},
         {}, "uses dp·tp·pp·cp = 24 devices, not 16: with tp=8, pp=1, cp=1 use dp=2"),
    Case("a training layout with an unknown axis", [*TRAIN, "--layout", "dp=2,tq=8"], {}, {},
         "'tq=8' is not key=N with a key of dp, tp, pp, cp, ep, vp"),
    Case("tensor parallel that does not divide the heads",
         [*TRAIN, "--devices", "6", "--layout", "dp=2,tp=3"], {}, {},
         "tp=3 does not divide llama-3.1-70b's 64 query / 8 KV heads; valid tp: 1, 2, 4, 8"),
    Case("a pipeline that does not divide the layers",
         [*TRAIN, "--devices", "112", "--layout", "dp=2,tp=8,pp=7"], {}, {},
         "pp·vp = 7 does not divide llama-3.1-70b's 80 layers; valid pp·vp: 1, 2, 4, 5, 8"),
    Case("expert parallel on a dense model", [*TRAIN, "--layout", "dp=2,tp=8,ep=2"], {}, {},
         "ep=2 needs an MoE model; llama-3.1-70b is dense: use ep=1"),
    Case("a micro-batch above the global batch",
         [*TRAIN, "--layout", "dp=2,tp=8", "--micro-batch", "100000"], {}, {},
         "micro-batch 100000 exceeds the global batch of 1024 sequences; valid micro-batches: 1"),
    Case("a ZeRO stage that is none", [*TRAIN, "--layout", "dp=2,tp=8", "--zero", "5"], {}, {},
         "zero 5 is not a ZeRO stage; valid: 0, 1, 2, 3"),
    Case("an unknown recompute policy",
         [*TRAIN, "--layout", "dp=2,tp=8", "--recompute", "some"], {}, {},
         "recompute 'some' is not valid; valid: none, selective, full"),
    Case("an unknown optimizer recipe",
         [*TRAIN, "--layout", "dp=2,tp=8", "--optimizer", "sgd9"], {}, {},
         "optimizer 'sgd9' is not a known recipe; valid: adam"),
    Case("a global batch that is not a token count",
         [*TRAIN[:-3], "--global-batch-tokens", "12X", "--json", "--layout", "dp=2,tp=8"], {},
         {}, "--global-batch-tokens '12X' is not a token count"),
    Case("a global batch of part of a sequence",
         [*TRAIN[:-3], "--global-batch-tokens", "100", "--json", "--layout", "dp=2,tp=8"], {},
         {}, "is not a whole number of 4096-token sequences"),
    Case("a plan over no devices", [*PLAN[:5], "0", *PLAN[6:]], {}, {},
         "--devices must be > 0, got 0"),
    Case("a plan for an unknown model", ["plan", "training", "--preset", "nope", *PLAN[4:]], {},
         {}, "unknown model preset 'nope'; valid: llama-2-7b"),
    Case("a backtest of an unknown phase", ["backtest", "--phase", "nope", "--json"], {}, {},
         "--phase 'nope' is not valid; valid: serving, training"),
    # Serving options.
    Case("an unknown KV precision", [*PREDICT, "--kv", "fp5"], {}, {},
         "unknown precision 'fp5'; valid: fp32"),
    Case("a batch of none", [*PREDICT, "--batch", "0"], {}, {}, "--batch must be > 0, got 0"),
    # A file written by the command: nothing half-written when the row is refused.
    Case("add an accelerator with its peak in FLOP/s, not TFLOPS",
         [*ADD_ACCELERATOR, "--memory-gb", "80", "--bf16-tflops", "{peak}"], {}, {},
         "column 'peak_flops_per_s_bf16': must be > 0 and at most 1e+18 FLOP/s",
         writes="out/c.parquet"),
    Case("add an accelerator with its memory in bytes, not GB",
         [*ADD_ACCELERATOR, "--bf16-tflops", "2000", "--memory-gb", "{memory}"], {}, {},
         "column 'memory_bytes'", writes="out/c.parquet"),
    Case("add an accelerator of an unknown status",
         [*ADD_ACCELERATOR, "--memory-gb", "80", "--status", "{status}"], {}, {},
         "--status 'rumoured': valid are shipping, announced, preliminary",
         writes="out/c.parquet"),
    Case("add an accelerator released in month 13",
         [*ADD_ACCELERATOR, "--memory-gb", "80", "--release-date", "{date}"], {}, {},
         "--release-date '2027-13-01' is not a YYYY-MM-DD date", writes="out/c.parquet"),
    Case("add an accelerator that is already in the catalog",
         [*ADD_ACCELERATOR[:3], "{id}", *ADD_ACCELERATOR[4:], "--memory-gb", "80"], {}, {},
         "duplicate accelerator_id 'nvidia-h100-sxm'", writes="out/c.parquet"),
    Case("add a serving workload with a training layout",
         [*ADD_WORKLOAD, "--batch", "{batch}", "--layout", "{layout}"], {}, {},
         "layout 'dp=3': 'dp=3' is not DEGREE=N; degrees: tp, dp_attention, ep, pp",
         writes="out/w.parquet"),
    Case("add a serving workload whose layout splits no head",
         [*ADD_WORKLOAD, "--layout", "{serving_layout}"], {}, {},
         "llama-3.1-8b cannot be served as tp=3 on 3 devices: tp=3 does not divide its 32 query "
         "heads", writes="out/w.parquet"),
    Case("a workloads file whose decode row has a training layout",
         ["rank", "--workloads", "{w.parquet}", "--start", "2027-01"], GOOD_W,
         {W: (_raw(_workloads(layout="dp=64,tp=8")), None)},
         "row 1, column 'layout': a decode workload's layout 'dp=64,tp=8': 'dp=64' is not "
         "DEGREE=N"),
    Case("add a workload at an unknown precision", [*ADD_WORKLOAD, "--weights", "{precision}"],
         {}, {}, "unknown precision 'fp5'; valid: fp32", writes="out/w.parquet"),
    Case("add a workload whose demand vanishes", [*ADD_WORKLOAD, "--growth", "{growth}"], {}, {},
         "row 1, column 'demand_growth_per_year': must be > -1", writes="out/w.parquet"),
    Case("import a workload with a negative demand",
         ["workloads", "import", "{w.csv}", "--to", "{out/w.parquet}"],
         {"w.csv": (_csv(demand="10"), None)}, {"w.csv": (_csv(demand="-5"), None)},
         "w.csv, row 1, column 'demand_units_per_s'", writes="out/w.parquet"),
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
    "an unknown workload": ["predict", "--workload", "mixtral-decode", "--json"],
    "a month that is not one": ["rank", "--start", "2027-12"],
    "a horizon out of range": ["rank", "--start", "2027-01", "--horizon-months", "6"],
    "an efficiency above 1": ["rank", "--start", "2027-01", "--bandwidth-efficiency", "0.9"],
    "an unknown scenario": ["rank", "--start", "2027-01", "--scenario", "baseline"],
    "a training layout over the wrong device count": [*TRAIN, "--layout", "dp=2,tp=8"],
    "a training layout with an unknown axis": [*TRAIN, "--layout", "dp=2,tp=8"],
    "tensor parallel that does not divide the heads": [*TRAIN, "--layout", "dp=2,tp=8"],
    "a pipeline that does not divide the layers": [*TRAIN, "--layout", "dp=2,tp=8"],
    "expert parallel on a dense model": [*TRAIN, "--layout", "dp=2,tp=8"],
    "a micro-batch above the global batch": [*TRAIN, "--layout", "dp=2,tp=8",
                                             "--micro-batch", "1"],
    "a ZeRO stage that is none": [*TRAIN, "--layout", "dp=2,tp=8", "--zero", "3"],
    "an unknown recompute policy": [*TRAIN, "--layout", "dp=2,tp=8", "--recompute", "full"],
    "an unknown optimizer recipe": [*TRAIN, "--layout", "dp=2,tp=8", "--optimizer", "adam"],
    "a global batch that is not a token count": [*TRAIN, "--layout", "dp=2,tp=8"],
    "a global batch of part of a sequence": [*TRAIN, "--layout", "dp=2,tp=8"],
    "a plan over no devices": PLAN,
    "a plan for an unknown model": PLAN,
    "a backtest of an unknown phase": ["backtest", "--phase", "training", "--json"],
    "an unknown KV precision": [*PREDICT, "--kv", "fp8"],
    "a batch of none": [*PREDICT, "--batch", "1"],
    "add a serving workload with a training layout": [*ADD_WORKLOAD, "--batch", "{batch}"],
    "measurements that are not Parquet": ["rank", "--start", "2027-01"],
}  # fmt: skip
VALUES = {
    "good": {"demand": "10", "peak": "2000", "memory": "80", "status": "shipping",
             "date": "2027-12-01", "id": "x1", "batch": "8", "precision": "bf16",
             "serving_layout": "tp=2",
             "growth": "0.5"},
    "bad": {"demand": "-10", "peak": "1e12", "memory": "80e9", "status": "rumoured",
            "date": "2027-13-01", "id": "nvidia-h100-sxm", "batch": "8", "layout": "dp=3",
            "serving_layout": "tp=3",
            "precision": "fp5", "growth": "-2"},
}  # fmt: skip


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
    assert {
        "catalog add",
        "workloads import",
        "plan training",
        "rank --start",
        "whatif --roadmap",
        "backtest --runs",
        "backtest --phase",
    } <= commands
    assert {c.command[0] for c in CASES} >= {"predict", "rank"}
    assert len(CASES) >= 60


@pytest.mark.parametrize(
    ("option", "says"),
    [
        (["--horizon-months", "0"], "a horizon of 0 months is out of range; valid: 1 to 120"),
        (["--drop-to", ""], "--drop-to number 1 is empty"),
        (["--start", "2027-00"], "--start must be a month as YYYY-MM"),
    ],
)
def test_an_audit_refuses_a_bad_option_before_it_starts(
    option: list[str],
    says: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The audit's own control is every audit test: here only that a bad option is one line,
    said before Prefect starts (no progress line) and before anything is written."""
    monkeypatch.chdir(tmp_path)
    code, err = _run(
        ["audit", "--quick", "--out", str(tmp_path / "out"), *option], monkeypatch, capsys
    )
    assert code == 2, err
    assert err.strip().splitlines() == [err.strip()] and err.startswith("memwall: error:"), err
    assert says in err
    assert not (tmp_path / "out").exists()
