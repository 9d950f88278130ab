"""Atomic writes: a failed write is one line naming the file and leaves nothing; a writer
killed mid-write leaves a temporary file that names it, swept once it is dead."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from hardware_profiles.parquet import WriteError, atomic_path, sweep_debris, write_table
from hardware_profiles.schema import WORKLOADS
from tasks.analysis.workload.examples import example_workloads


def test_a_write_that_fails_is_one_line_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file where a folder should be")
    target = tmp_path / "blocked" / "w.parquet"
    with pytest.raises(WriteError) as caught:
        write_table(example_workloads(), target, WORKLOADS)
    assert str(caught.value).startswith(f"{target}: cannot write (")
    assert "\n" not in str(caught.value)


def test_an_error_inside_the_write_leaves_nothing(tmp_path: Path) -> None:
    def fail(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError(27, "File too large")

    with (
        pytest.raises(WriteError, match=r"r\.pdf: cannot write \(File too large\)"),
        atomic_path(tmp_path / "r.pdf") as tmp,
    ):
        fail(tmp)
    assert list(tmp_path.iterdir()) == []


def test_debris_of_dead_writers_is_swept_and_live_writers_are_left_alone(tmp_path: Path) -> None:
    host = socket.gethostname().replace(".", "_")
    dead = tmp_path / f".r.parquet.{host}-{2**22 + 12345}.x1.tmp"
    live = tmp_path / f".r.parquet.{host}-{os.getpid()}.x2.tmp"
    other_host = tmp_path / ".r.parquet.elsewhere-1.x3.tmp"
    for path in (dead, live, other_host):
        path.write_bytes(b"half")
    assert sweep_debris(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other_host.name])


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_a_written_file_honours_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    """A shared history or drop folder stays readable by the team: the file gets what a plain
    open() would give it (a temporary file alone would be 0600 whatever the umask)."""
    before = os.umask(umask)
    try:
        path = write_table(example_workloads(), tmp_path / "w.parquet", WORKLOADS)
        (tmp_path / "plain").write_text("x")
    finally:
        os.umask(before)
    assert path.stat().st_mode & 0o777 == mode
    assert (tmp_path / "plain").stat().st_mode & 0o777 == mode
