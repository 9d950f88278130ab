"""memwall's backtest beside NVIDIA's aiconfigurator, printed by ``benchmarks/backtest.py``.

aiconfigurator is a benchmark dependency, never a runtime one: it lives in ``.venv-peers``
(``make peers``, pinned by ``benchmarks/peers/constraints.txt``) and is run there as a
subprocess (``benchmarks/peers/aiconfigurator_rows.py``) on the requests
``benchmarks/peers/aiconfigurator_requests.py`` makes from the published rows; the comparison
is :mod:`benchmarks.peers.comparison`. Where the environment is missing this says how to make
it, in one line, and prints nothing else.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import pandas as pd

from benchmarks.peers.aiconfigurator_requests import Request, Unexpressed, express
from benchmarks.peers.comparison import Side, alone_by_vendor, common_rows, side, sides_by, target
from tasks.analysis.supply.backtest import Backtest

ROOT: Final = Path(__file__).resolve().parent.parent.parent
PEERS_VENV: Final = ROOT / ".venv-peers"
RUNNER: Final = "benchmarks.peers.aiconfigurator_rows"
# 37 rows take under a minute on one core; a run that takes this long has hung.
TIMEOUT_S: Final = 1800


class PeerError(RuntimeError):
    """The peer's runner failed: its last words."""


def ask_aiconfigurator(requests: Iterable[Request], python: Path) -> dict[str, Any]:
    """The runner's JSON answer for ``requests``, run by the peers environment's ``python``."""
    done = subprocess.run(
        [str(python), "-m", RUNNER],
        input=json.dumps([r.as_json() for r in requests]),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise PeerError(f"{RUNNER} exited {done.returncode}: {last}")
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def _pair(s: Side) -> str:
    return (
        f"memwall MAPE {100 * s.memwall.mape:.1f} %, bias {100 * s.memwall.bias:+.1f} %; "
        f"aiconfigurator MAPE {100 * s.peer.mape:.1f} %, bias {100 * s.peer.bias:+.1f} %"
    )


def print_side_by_side(result: Backtest, rows: pd.DataFrame, venv: Path = PEERS_VENV) -> None:
    """Both tools' error on the rows both express, memwall alone on the rest, the rows
    aiconfigurator does not express (with why), and the target line."""
    python = venv / "bin" / "python"
    if not python.exists():
        shown = venv.relative_to(ROOT) if venv.is_relative_to(ROOT) else venv
        print(
            f"aiconfigurator: not installed in {shown}; `make peers` makes it (pinned by "
            "benchmarks/peers/constraints.txt), then this benchmark prints it side by side"
        )
        return
    records = rows.to_dict("records")
    asked = [express({str(k): v for k, v in record.items()}) for record in records]
    requests = [a for a in asked if isinstance(a, Request)]
    refused: dict[str, str] = {a.run_id: a.why for a in asked if isinstance(a, Unexpressed)}
    try:
        answer = ask_aiconfigurator(requests, python)
    except (PeerError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        print(f"aiconfigurator: no figures ({exc})")
        return
    results: list[Mapping[str, Any]] = answer["results"]
    refused.update({str(r["run_id"]): str(r["error"]) for r in results if "error" in r})
    both = common_rows(result.runs, {r.run_id: r.reads for r in requests}, results)
    _print_common(answer, both, results, rows, requests)
    for summary in alone_by_vendor(result.runs, both):
        print(
            f"memwall alone, vendor {summary.split} ({summary.runs} runs aiconfigurator does not "
            f"express): MAPE {100 * summary.mape:.1f} %, bias {100 * summary.bias:+.1f} %"
        )
    print(f"aiconfigurator does not express {len(refused)} rows:")
    for run_id, why in refused.items():
        print(f"  {run_id}: {why}")
    met, lines = target(both)
    print(
        "target: memwall (leave-one-source-out) closer than aiconfigurator overall and in every "
        f"class with >= 5 common rows: {'met' if met else 'missed'}"
    )
    for line in lines:
        print(f"  {line}")


def _print_common(
    answer: Mapping[str, Any],
    both: pd.DataFrame,
    results: list[Mapping[str, Any]],
    rows: pd.DataFrame,
    requests: list[Request],
) -> None:
    by_id = {str(r["run_id"]): r for r in results}
    backends = {r.run_id: r.backend_name for r in requests}
    engines = {
        str(run_id): f"{engine} {'' if pd.isna(version) else version}".strip()
        for run_id, engine, version in zip(
            rows["run_id"], rows["engine"], rows["engine_version"], strict=True
        )
    }
    versions = sorted({f"{r.get('database_version')}" for r in results if "error" not in r})
    print(
        f"aiconfigurator {answer['aiconfigurator']} (its default estimator: SILICON database, "
        f"the newest version it ships per GPU and engine: {', '.join(versions)}) priced "
        f"{len(results) - sum('error' in r for r in results)} of {len(rows)} published rows; "
        f"side by side on the {len(both)} rows memwall predicts too (memwall's figure: its "
        "leave-one-source-out prediction, the headline's)"
    )
    local = sorted({r.model_path for r in requests if r.local_config is not None})
    if local:
        print(
            f"  ({', '.join(p.removeprefix('local/') for p in local)}: aiconfigurator ships no "
            "config, so it is given a local config.json written from memwall's preset)"
        )
    print(f"  overall ({len(both)} runs): {_pair(side(both))}")
    for grouping in ("class", "phase", "vendor"):
        for s in sides_by(both, grouping):
            print(f"  {grouping} {s.split} ({s.runs} runs): {_pair(s)}")
    for row in both.to_dict("records"):
        run_id = str(row["run_id"])
        peer = by_id[run_id]
        unfit = "; it warns the batch does not fit" if peer.get("warning") else ""
        print(
            f"  run {run_id}: measured step {1e3 * row['measured_step_s']:.2f} ms; "
            f"memwall {100 * row['loso_error']:+.1f} %, aiconfigurator "
            f"{100 * row['peer_error']:+.1f} % (ran on {engines[run_id]}; priced by its "
            f"{backends[run_id]} {peer['database_version']} database, KV {peer['kv_cache']}{unfit})"
        )
