"""Several ``memwall workloads add --to`` on one file at once: every row is kept.

Each writer reads the file, appends its row and renames the new file into place; without one
writer at a time, two that read the same old file each drop the other's row. The writers are
separate processes, started together behind a barrier.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from flows.cli_workloads_add import _append_workloads
from hardware_profiles.parquet import read_table, write_table
from hardware_profiles.schema import WORKLOADS
from tasks.analysis.workload.examples import example_workloads

WRITERS = 6


def _add(to: str, n: int, start: multiprocessing.synchronize.Barrier) -> None:
    row = example_workloads().head(1).assign(workload_id=f"added-{n}", pool_share=None)
    start.wait()
    _append_workloads(row, Path(to), f"writer {n}")


def test_writers_at_once_keep_every_row(tmp_path: Path) -> None:
    to = tmp_path / "w.parquet"
    write_table(example_workloads(), to, WORKLOADS)
    # Not fork: this process may hold JAX's threads (another test imported it).
    context = multiprocessing.get_context("forkserver")
    start = context.Barrier(WRITERS)
    writers = [context.Process(target=_add, args=(str(to), n, start)) for n in range(WRITERS)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=120)
    assert [w.exitcode for w in writers] == [0] * WRITERS
    ids = set(read_table(to, WORKLOADS)["workload_id"])
    assert {f"added-{n}" for n in range(WRITERS)} <= ids
    assert len(ids) == len(example_workloads()) + WRITERS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.parquet"]
