"""`memwall workloads add` with latency targets, replica caps and start months; `memwall rank`
showing the walls: a subprocess, its exit code, its one-line errors."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from hardware_profiles.parquet import read_table, write_table
from hardware_profiles.schema import WORKLOADS
from tasks.analysis.training.audit import RISKS
from tasks.analysis.workload.examples import example_workloads
from tests.cli.test_cli_profiles import digest, memwall, one_error

ADD = [
    *("workloads", "add", "--id", "chat", "--owner", "o", "--pool", "inference"),
    *("--preset", "llama-3.1-70b", "--batch", "8", "--demand", "100"),
]


def _next_month() -> dt.date:
    today = dt.datetime.now(dt.UTC).date()
    return dt.date(today.year + today.month // 12, today.month % 12 + 1, 1)


def test_add_stores_targets_cap_and_start(tmp_path: Path) -> None:
    target = tmp_path / "w.parquet"
    start = _next_month()
    result = memwall(
        [
            *ADD,
            *("--tpot-slo", "0.05", "--max-devices-per-replica", "4"),
            *("--start-month", f"{start:%Y-%m}", "--to", str(target)),
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    row = read_table(target, WORKLOADS).iloc[0]
    assert row["tpot_slo_s"] == 0.05 and pd.isna(row["ttft_slo_s"])
    assert row["max_devices_per_replica"] == 4 and row["start_month"] == start


def test_add_stores_a_layout_and_a_request_shape(tmp_path: Path) -> None:
    target = tmp_path / "w.parquet"
    result = memwall(
        [*ADD, *("--layout", "tp=8", "--prompt", "5000", "--output", "500", "--to", str(target))],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    row = read_table(target, WORKLOADS).iloc[0]
    assert row["layout"] == "tp=8"
    assert (row["prompt_tokens"], row["output_tokens"]) == (5000, 500)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            ["--layout", "tp=3"],
            "llama-3.1-70b cannot be served as tp=3 on 3 devices: tp=3 does not divide its 64 "
            "query heads",
        ),
        (["--layout", "tp=8,ep=8"], "ep=8 on a dense model; valid layouts for 8 devices: tp=8 |"),
        (["--prompt", "5000"], "--prompt and --output go together"),
        (["--prompt", "5000", "--output", "0"], "--output must be > 0"),
        (["--tpot-slo", "0"], "row 1, column 'tpot_slo_s': must be > 0"),
        (["--ttft-slo", "-1"], "row 1, column 'ttft_slo_s': must be > 0"),
        (
            ["--max-devices-per-replica", "0"],
            "row 1, column 'max_devices_per_replica': must be > 0",
        ),
        (["--start-month", "1999-01"], "--start-month 1999-01 is outside"),
        (["--start-month", "2027-13"], "--start-month must be a month as YYYY-MM"),
    ],
)
def test_bad_targets_caps_and_starts_are_one_line_and_leave_the_file(
    tmp_path: Path, extra: list[str], expected: str
) -> None:
    target = write_table(example_workloads(), tmp_path / "w.parquet", WORKLOADS)
    before = digest(target)
    result = memwall([*ADD, *extra, "--to", str(target)], tmp_path)
    assert result.returncode == 2
    assert expected in one_error(result)
    assert digest(target) == before


def test_rank_shows_the_walls_and_a_start_after_the_horizon_names_the_cell(
    tmp_path: Path,
) -> None:
    workloads = example_workloads()
    workloads["tpot_slo_s"] = None
    workloads.loc[workloads["workload_id"] == "chat-70b-decode", "tpot_slo_s"] = 0.002
    path = write_table(workloads, tmp_path / "w.parquet", WORKLOADS)
    result = memwall(["rank", "--start", "2026-11", "--json", "--workloads", str(path)], tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {r["workload_id"]: r for r in json.loads(result.stdout)}
    # 70B at batch 32 reads ~141 GB of weights per step: no H100 replica of <= 8 devices
    # gets batch 1 under 2 ms (141e9 / (8 x 2.8475e12) = 6.2 ms).
    assert rows["chat-70b-decode"]["wall"] == "latency"
    assert rows["chat-70b-decode"]["wall_month"] == "2026-11"
    table = memwall(["rank", "--start", "2026-11", "--workloads", str(path)], tmp_path)
    assert "latency" in table.stdout

    workloads["start_month"] = None
    workloads.loc[2, "start_month"] = dt.date(2030, 1, 1)
    write_table(workloads, path, WORKLOADS)
    error = one_error(memwall(["rank", "--start", "2026-11", "--workloads", str(path)], tmp_path))
    assert f"{path}, row 3, column 'start_month': start_month 2030-01 is after the horizon" in error


def test_rank_carries_a_training_job_added_beside_the_examples(tmp_path: Path) -> None:
    """A 70B job at dp=32,tp=8,pp=2 on the training pool's 512 H100s, 2M tokens a step, one
    step every s seconds (the row's step_time_s), demand 0.1 steps/s doubling yearly: its
    headroom is H(t) = 1/(0.1·s·2^(t/12)), so its wall is the first month t above
    12·log2(1/(0.1·s)) (month 0 where H(0) < 1). Its step is compute-bound, so the wall is
    compute (a shortfall, not starvation), ranked beside the serving workloads."""
    path = write_table(example_workloads(), tmp_path / "w.parquet", WORKLOADS)
    job = [
        *("workloads", "add", "--id", "pretrain-70b", "--owner", "research"),
        *("--pool", "training", "--demand", "0.1", "--growth", "1", "--phase", "training"),
        *("--preset", "llama-3.1-70b", "--context", "8192", "--layout", "dp=32,tp=8,pp=2"),
        *("--global-batch-tokens", "2M", "--zero", "1", "--to", str(path)),
    ]
    assert memwall(job, tmp_path).returncode == 0
    result = memwall(["rank", "--start", "2026-11", "--json", "--workloads", str(path)], tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {r["workload_id"]: r for r in json.loads(result.stdout)}
    assert len(rows) == len(example_workloads()) + 1
    row = rows["pretrain-70b"]
    headroom = 1 / (0.1 * row["step_time_s"])
    t = 0 if headroom < 1 else math.floor(12 * math.log2(headroom)) + 1
    month = dt.date(2026 + (10 + t) // 12, (10 + t) % 12 + 1, 1)
    assert (row["wall"], row["wall_month"]) == ("compute", f"{month:%Y-%m}")
    assert row["bound"] == "compute" and row["starve_month"] is None
    assert row["wall_month_p10"] <= row["wall_month"]
    assert (row["devices_per_replica"], row["replica_layout"]) == (512, "dp=32,tp=8,pp=2")
    assert 0 < row["utilization_now"] < 1  # the MFU
    # Its best fix is a training mitigation (none of the serving ones), where one buys a month.
    best = row["best_mitigation"]
    assert (best in RISKS and row["months_gained"] > 0) or (best, row["months_gained"]) == (None, 0)
    table = memwall(["rank", "--start", "2026-11", "--workloads", str(path)], tmp_path)
    assert f"compute {month:%Y-%m}" in " ".join(table.stdout.split())


def test_rank_warns_where_the_catalog_has_no_interconnect(tmp_path: Path) -> None:
    from hardware_profiles.catalog import builtin_catalog
    from hardware_profiles.schema import CATALOG

    catalog = builtin_catalog()
    catalog["interconnect_bandwidth_bytes_per_s"] = 450e9  # NVLink 4: 900 GB/s both ways
    catalog.loc[
        catalog["accelerator_id"] == "nvidia-l40s", "interconnect_bandwidth_bytes_per_s"
    ] = None
    path = write_table(catalog, tmp_path / "c.parquet", CATALOG)
    result = memwall(["rank", "--start", "2026-11", "--json", "--catalog", str(path)], tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "interconnect" in line]
    assert len(warnings) == 1 and "for nvidia-l40s:" in warnings[0]
