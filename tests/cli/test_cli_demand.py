"""`memwall workloads query`, `workloads sync` refusals that need no Prometheus, and the demand
trend in `memwall history`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from hardware_profiles.parquet import read_table, write_table
from hardware_profiles.schema import WORKLOADS
from tasks.analysis.workload.examples import example_workloads
from tasks.demand import file_provenance
from tasks.history import record_demand, record_run
from tests.cli.test_cli import memwall
from tests.cli.test_cli_ops import one_error
from tests.integration.conftest import free_port
from tests.tasks.test_history import T0, measurements, ranking


def test_query_prints_the_template_and_sets_it_on_a_workload(tmp_path: Path) -> None:
    printed = memwall(["workloads", "query", "--engine", "sglang", "--model", "m"], None, tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == 'sum(rate(sglang:generation_tokens_total{model_name="m"}[5m]))'

    source = write_table(example_workloads(), tmp_path / "w.parquet", WORKLOADS)
    args = ["workloads", "query", "--engine", "vllm", "--model", "m", "--phase", "prefill"]
    first = str(example_workloads()["workload_id"].iloc[0])
    done = memwall(
        [*args, "--workload", first, "--workloads", str(source), "--to", str(source)],
        None,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    written = read_table(source, WORKLOADS).set_index("workload_id")["demand_query"]
    assert written[first] == 'sum(rate(vllm:prompt_tokens_total{model_name="m"}[5m]))'
    assert written.drop(index=first).isna().all()


def test_query_and_sync_refuse_bad_input_in_one_line(tmp_path: Path) -> None:
    unknown = memwall(["workloads", "query", "--engine", "triton", "--model", "m"], None, tmp_path)
    assert unknown.returncode == 2
    assert "unknown engine 'triton'; valid: vllm, sglang, trtllm, tgi" in one_error(unknown.stderr)

    source = write_table(example_workloads(), tmp_path / "w.parquet", WORKLOADS)
    out = tmp_path / "out.parquet"
    url = f"http://127.0.0.1:{free_port()}"
    none = memwall(
        ["workloads", "sync", "--prometheus", url, "--workloads", str(source), "--to", str(out)],
        None,
        tmp_path,
    )
    assert none.returncode == 2
    assert f"{source}: no workload has a demand_query" in one_error(none.stderr)
    frame = example_workloads().assign(demand_query="up")
    with_query = write_table(frame, tmp_path / "q.parquet", WORKLOADS)
    unreachable = memwall(
        [
            "workloads",
            "sync",
            "--prometheus",
            url,
            "--workloads",
            str(with_query),
            "--to",
            str(out),
        ],
        None,
        tmp_path,
    )
    assert unreachable.returncode == 2
    assert f"Prometheus at {url} unreachable" in one_error(unreachable.stderr)
    assert not out.exists()


def test_history_shows_the_demand_beside_the_hardware(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    history = tmp_path / "history"
    frame = example_workloads()
    for week, scale in enumerate([1.0, 1.1]):
        at = T0 + dt.timedelta(days=7 * week)
        record_run(str(history), f"r{week}", measurements(f"r{week}", at, 3e12), ranking(), at)
        demand = file_provenance(frame, "as written in w.parquet")
        demand["demand_units_per_s"] *= scale
        record_demand(str(history), f"r{week}", demand, at)
    as_json = memwall(["history", "--history", str(history), "--demand", "--json"], None, tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert len(rows) == 2 * len(frame)
    later = [r for r in rows if r["run_id"] == "r1"]
    assert all(abs(r["change"] - 0.1) < 1e-9 for r in later)
    assert all(r["source"] == "file" for r in rows)
    table = memwall(["history", "--history", str(history)], None, tmp_path)
    assert table.returncode == 0, table.stderr
    assert "triad float32" in table.stdout and "+10.0%" in table.stdout
