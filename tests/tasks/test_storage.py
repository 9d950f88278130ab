"""Shared storage writes all at once, whether it is named by a path or a ``file://`` URL.

A file-size limit (util-linux's prlimit, in the child) stands in for a disk that fills up in
the middle of a write: the file already there must survive it, under either spelling.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hardware_profiles.schema import WORKLOADS
from tasks.analysis.workload.examples import example_workloads
from tasks.storage import read_parquet, write_parquet

# A table bigger than the limit: 20,000 example rows is well over 64 KiB of Parquet.
_WRITE = """
import sys
import pandas as pd
from hardware_profiles.schema import WORKLOADS
from tasks.analysis.workload.examples import example_workloads
from tasks.storage import StorageError, write_parquet
from hardware_profiles.parquet import WriteError
rows = pd.concat([example_workloads()] * 4000, ignore_index=True)
rows["workload_id"] = [f"w{i}" for i in range(len(rows))]
try:
    write_parquet(rows, sys.argv[1], WORKLOADS)
except (StorageError, WriteError) as exc:
    print(exc)
    sys.exit(2)
"""


def _location(path: Path, spelling: str) -> str:
    return path.as_uri() if spelling == "url" else str(path)


@pytest.mark.parametrize("spelling", ["path", "url"])
def test_a_write_cut_short_by_a_full_disk_keeps_the_file_there(
    tmp_path: Path, spelling: str
) -> None:
    target = tmp_path / "measurements" / "w.parquet"
    location = _location(target, spelling)
    write_parquet(example_workloads(), location, WORKLOADS)
    before = target.read_bytes()
    done = subprocess.run(
        ["prlimit", "--fsize=65536", "--", sys.executable, "-c", _WRITE, location],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert done.returncode == 2, done.stderr
    assert "cannot write" in done.stdout
    assert target.read_bytes() == before
    assert [p.name for p in target.parent.iterdir()] == ["w.parquet"]
    assert len(read_parquet(location, WORKLOADS)) == len(example_workloads())
