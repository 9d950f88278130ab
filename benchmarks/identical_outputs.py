"""The figures memwall prints, captured so a refactor can show it changed none of them.

Runs the real CLI (``rank --json``, ``predict --json``, ``backtest --json``) and the what-if
comparison (``memwall whatif``'s figures, which the CLI writes only into its PDF) on the
built-in examples and on 1,000 generated workloads over the benchmark roadmap (with a purchase
scenario for ``whatif``), at a fixed start month, and writes each command's standard output to
a file in ``--out``. With ``--against DIR`` it compares each file byte for byte with the same
file captured earlier (say, from the commit before the refactor) and prints which differ.

    .venv/bin/python -m benchmarks.identical_outputs --out /tmp/before
    (change the code)
    .venv/bin/python -m benchmarks.identical_outputs --out /tmp/after --against /tmp/before

A file whose bytes differ but whose JSON reads back to the same values says so ("same values"):
what an encoder's formatting changes (orjson writes ``7.9e-05`` as ``0.000079``), not a figure.
The ``timings`` key of an output (its stages' seconds, different at every run) is left out of
what is written and compared.

It never fails a build; its exit status is 1 when a file's values differ, so a script can use
it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from benchmarks.analysis_scale import roadmap, workloads
from hardware_profiles.parquet import write_table
from hardware_profiles.schema import ROADMAP, WORKLOADS

START = "2027-01"
GENERATED = 1_000
PREDICTIONS = {
    "predict-70b-decode-tp8": ["--preset", "llama-3.1-70b", "--batch", "8", "--devices", "8"],
    "predict-mixtral-prefill": [
        "--preset",
        "mixtral-8x7b",
        "--phase",
        "prefill",
        "--batch",
        "4",
        "--context",
        "2048",
        "--accelerator",
        "nvidia-h200-sxm",
    ],
    "predict-8b-fp8-decode": [
        "--preset",
        "llama-3.1-8b",
        "--batch",
        "64",
        "--weights",
        "fp8",
        "--kv",
        "fp8",
        "--activations",
        "fp8",
    ],
    "predict-70b-training": ["--preset", "llama-3.1-70b", "--phase", "training", "--devices", "8"],
}


def _generated_inputs(folder: Path) -> tuple[Path, Path]:
    """1,000 benchmark workloads and the benchmark roadmap plus a purchase scenario."""
    plan = roadmap()
    extra = plan.iloc[[1]].copy()
    extra["count_delta"] = 512
    extra["scenario"] = "more-h200"
    plan = pd.concat([plan.assign(scenario=None), extra], ignore_index=True)
    w = write_table(workloads(GENERATED), folder / "workloads.parquet", WORKLOADS)
    r = write_table(plan, folder / "roadmap.parquet", ROADMAP)
    return w, r


def _commands(folder: Path) -> dict[str, list[str]]:
    w, r = _generated_inputs(folder)
    generated = ["--workloads", str(w), "--roadmap", str(r)]
    commands = {
        "rank-examples.json": ["rank", "--json", "--start", START],
        f"rank-{GENERATED}.json": ["rank", "--json", "--start", START, *generated],
        "whatif-examples.json": [*_WHATIF, "", "", str(folder / "pdf")],
        f"whatif-{GENERATED}.json": [*_WHATIF, str(w), str(r), str(folder / "pdf")],
        "backtest.json": ["backtest", "--json"],
    }
    for name, args in PREDICTIONS.items():
        commands[f"{name}.json"] = ["predict", "--json", *args]
    return commands


# What `memwall whatif` compares, as JSON: its comparison table and headline.
_WHATIF = [
    "-c",
    "import datetime as dt, json, sys\n"
    "from flows.whatif import compare_scenarios\n"
    "w, r, out = sys.argv[1] or None, sys.argv[2] or None, sys.argv[3]\n"
    "o = compare_scenarios(w, r, None, None, dt.date(2027, 1, 1), 18, 0.85, 0.7, out)\n"
    "print(json.dumps({'headline': o.headline, 'comparison': o.comparison}, indent=1,"
    " default=repr))",
]


# The last key of an object output, as the CLI prints it (flows.cli_common.print_json).
_TIMINGS = re.compile(r',\n  "timings": \{[^{}]*\}\n\}\n?$')


def without_timings(text: str) -> str:
    """``text`` less its ``timings`` object, which changes from run to run."""
    return _TIMINGS.sub("\n}\n", text)


def same_values(before: str, after: str) -> bool:
    """Whether two outputs hold the same JSON values, whatever their formatting."""
    try:
        return bool(json.loads(before) == json.loads(after))
    except ValueError:
        return False


def _program(command: list[str]) -> list[str]:
    if command[0] == "-c":
        return [sys.executable, *command]
    return [str(Path(sys.executable).with_name("memwall")), *command]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--against", type=Path)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    differ = 0
    with tempfile.TemporaryDirectory() as tmp:
        commands = _commands(Path(tmp))
        for name, command in commands.items():
            done = subprocess.run(_program(command), capture_output=True, text=True, check=False)
            # The PDF path is in a temporary folder that differs from run to run.
            text = without_timings(done.stdout.replace(tmp, "<tmp>"))
            (args.out / name).write_text(text)
            digest = hashlib.sha256(text.encode()).hexdigest()[:16]
            verdict = ""
            if args.against is not None:
                before = args.against / name
                earlier = before.read_text() if before.exists() else ""
                same = earlier == text
                values = same or same_values(earlier, text)
                verdict = "identical" if same else "same values" if values else "DIFFERS"
                differ += not values
            print(f"{name:34s} exit {done.returncode}  {len(text):8,d} B  {digest}  {verdict}")
    if args.against is not None:
        print(f"{differ} of {len(commands)} files differ" if differ else "no values differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
