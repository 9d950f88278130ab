"""A history heals: a file that cannot be read is moved into quarantine/ beside it with its
reason, the rest is read, and `memwall history` says what was set aside."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from flows.cli import app
from tasks.history import SetAside, check_history, quarantined, read_measurements, record_run
from tests.tasks.test_history import T0, measurements, ranking


def _history(tmp_path: Path, runs: int = 3) -> Path:
    for i in range(runs):
        at = T0 + dt.timedelta(days=7 * i)
        record_run(str(tmp_path), f"r{i}", measurements(f"r{i}", at, 3e12), ranking(), at)
    return tmp_path


def test_a_truncated_file_is_moved_aside_with_its_reason_and_the_rest_is_read(
    tmp_path: Path,
) -> None:
    history = _history(tmp_path)
    bad = history / "measurements" / "r1.parquet"
    bad.write_bytes(bad.read_bytes()[:100])  # a disk hiccup
    found = check_history(str(history))
    assert [(f.path, f.moved_to) for f in found] == [
        (str(bad), str(history / "measurements" / "quarantine" / "r1.parquet"))
    ]
    assert "not a readable Parquet file" in found[0].reason
    assert not bad.exists()
    reason = history / "measurements" / "quarantine" / "r1.parquet.reason.txt"
    assert "not a readable Parquet file" in reason.read_text()
    assert set(read_measurements(str(history))["run_id"]) == {"r0", "r2"}
    # Once moved aside it is not read again, and still listed until someone deals with it.
    assert check_history(str(history)) == []
    assert [q.path for q in quarantined(str(history))] == [str(found[0].moved_to)]


def test_a_file_breaking_the_schema_is_set_aside_too(tmp_path: Path) -> None:
    history = _history(tmp_path, runs=2)
    path = history / "measurements" / "r0.parquet"
    data = pq.read_table(path)
    best = data.column("best").to_pylist()
    best[0] = math.nan
    pq.write_table(data.set_column(data.column_names.index("best"), "best", pa.array(best)), path)
    found = check_history(str(history))
    assert len(found) == 1 and "column 'best': must be a finite number" in found[0].reason


def test_reading_moves_aside_on_the_way_and_reports_it(tmp_path: Path) -> None:
    history = _history(tmp_path, runs=2)
    (history / "ranking" / "r0.parquet").write_text("not parquet")
    found: list[SetAside] = []
    check = read_measurements(str(history), found)
    assert set(check["run_id"]) == {"r0", "r1"} and found == []
    assert [f.path for f in check_history(str(history))] == [
        str(history / "ranking" / "r0.parquet")
    ]


def test_memwall_history_says_what_was_set_aside(tmp_path: Path) -> None:
    history = _history(tmp_path)
    (history / "measurements" / "r2.parquet").write_bytes(b"PAR1 truncated")
    result = CliRunner().invoke(app, ["history", "--history", str(history), "--json"])
    assert result.exit_code == 0, result.output
    assert "set aside, not read:" in result.stderr and "r2.parquet" in result.stderr
    assert "r2" not in result.stdout and "r1" in result.stdout
